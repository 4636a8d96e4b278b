#!/bin/sh
# Output that is not a CGI header block.
echo "this is not a header"
echo
echo "body"
