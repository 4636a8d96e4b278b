#!/usr/bin/python3
# Answers with the Location (and optional Status) given in the query string.
import os, sys
from urllib.parse import parse_qs
q = parse_qs(os.environ.get("QUERY_STRING", ""))
if "status" in q:
    sys.stdout.write("Status: %s\r\n" % q["status"][0])
sys.stdout.write("Location: %s\r\n\r\n" % q["loc"][0])
