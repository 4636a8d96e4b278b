#!/bin/sh
# Sleeps before any header (for the concurrency caps).
exec sleep 600
