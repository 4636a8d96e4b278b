#!/bin/sh
# Writes QUERY_STRING lines to stderr, then a normal response.
i=0
while [ "$i" -lt "${QUERY_STRING:-10}" ]; do
  echo "stderr line $i" >&2
  i=$((i + 1))
done
printf 'Content-Type: text/plain\r\n\r\ndone\n'
