#!/bin/sh
# A complete response, then a non-zero exit status.
printf 'Content-Type: text/plain\r\n\r\nbody before exit\n'
exit 3
