#!/bin/sh
# A trivial CGI script: prints a header block, a blank line and a body.
printf 'Content-Type: text/plain\r\n\r\n'
printf 'hello from %s (%s %s)\n' "$SERVER_NAME" "$REQUEST_METHOD" "$SCRIPT_NAME"
