#!/bin/sh
# Answers with the Status line given as the query string.
printf 'Status: %s\r\nContent-Type: text/plain\r\n\r\nstatus body\n' "$QUERY_STRING"
