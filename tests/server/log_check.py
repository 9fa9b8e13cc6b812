#!/usr/bin/env python3
"""tests/server/log_check.py - checks the operational log format of sbx kms serve.

  log_check.py LOG

Every line must be one JSON object: "time" RFC 3339 in UTC with milliseconds
(2026-12-08T01:02:03.456Z), "level" one of error, warn, info, debug, "msg" a
non-empty string, then fields whose values are strings. Prints the problems
(one per line) and exits 1 if there are any; prints the number of lines.
"""
import json
import re
import sys

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
problems = []
with open(sys.argv[1], encoding="utf-8") as f:
    lines = f.read().splitlines()
for n, line in enumerate(lines, 1):
    try:
        obj = json.loads(line)
    except ValueError as e:
        problems.append(f"line {n}: not JSON ({e}): {line!r}")
        continue
    if not isinstance(obj, dict):
        problems.append(f"line {n}: not an object")
        continue
    keys = list(obj)
    if keys[:3] != ["time", "level", "msg"]:
        problems.append(f"line {n}: does not start with time, level, msg: {keys}")
    if not TIME.match(str(obj.get("time"))):
        problems.append(f"line {n}: time is not RFC 3339 UTC with milliseconds: {obj.get('time')!r}")
    if obj.get("level") not in ("error", "warn", "info", "debug"):
        problems.append(f"line {n}: bad level {obj.get('level')!r}")
    if not isinstance(obj.get("msg"), str) or not obj["msg"]:
        problems.append(f"line {n}: msg is not a non-empty string")
    for k, v in obj.items():
        if not isinstance(v, str):
            problems.append(f"line {n}: field {k} is not a string")
for p in problems:
    print(p)
print(f"{len(lines)} lines")
sys.exit(1 if problems or not lines else 0)
