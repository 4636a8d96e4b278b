#!/bin/sh
# Ignores SIGTERM, starts a grandchild, and sleeps before any header:
# only SIGKILL to the whole process group ends both.
trap '' TERM
echo "pgid=$$" >&2
sleep 600 &
sleep 600
