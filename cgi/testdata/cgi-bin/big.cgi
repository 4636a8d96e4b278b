#!/bin/sh
# Writes QUERY_STRING bytes of 'x' (default 1 MiB).
printf 'Content-Type: application/octet-stream\r\n\r\n'
head -c "${QUERY_STRING:-1048576}" /dev/zero | tr '\0' x
