#!/bin/sh
# A body that a sniffing browser would render as HTML, with no Content-Type.
printf 'Status: 200\r\n\r\n<script>alert(1)</script>'
