#!/bin/sh
# Prints how the server split the request path.
printf 'Content-Type: text/plain\r\n\r\n'
printf 'SCRIPT_NAME=%s\nPATH_INFO=%s\nPATH_TRANSLATED=%s\nSCRIPT_FILENAME=%s\n' \
  "$SCRIPT_NAME" "$PATH_INFO" "$PATH_TRANSLATED" "$SCRIPT_FILENAME"
