#!/bin/sh
# A local redirect to itself: an endless internal redirect loop.
printf 'Location: /cgi-bin/loop.cgi\r\n\r\n'
