#!/bin/sh
# Fails before writing any header.
echo "die.cgi: something broke" >&2
exit 1
