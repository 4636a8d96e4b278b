#!/usr/bin/python3
# Echoes CONTENT_LENGTH bytes of stdin, reporting the length it was given.
import os, sys
n = os.environ.get("CONTENT_LENGTH")
data = sys.stdin.buffer.read(int(n)) if n else b""
out = sys.stdout.buffer
out.write(b"Content-Type: application/octet-stream\r\n")
out.write(("X-Content-Length: %s\r\n" % (n if n is not None else "none")).encode())
out.write(("X-Method: %s\r\n\r\n" % os.environ.get("REQUEST_METHOD", "")).encode())
out.write(data)
