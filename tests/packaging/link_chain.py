#!/usr/bin/env python3
"""tests/packaging/link_chain.py MAP MEMBER... - why the linker took each MEMBER.

MAP is a GNU ld map file (-Wl,-Map,MAP); MEMBER an archive member such as client.c.o.
For each member prints the chain of references that pulled it into the program, e.g.
    client.c.o <- envelope.c.o [sbx_kms__origin] <- decrypt.c.o [sbx_age__kms_check]
    <- the program [sbx_age_decrypt_buf]
so that a failed static link names the call that reaches a library it should not.
"""
import re
import sys


def reasons(map_text):
    """{member: (referrer, symbol)} from the map's "Archive member included" table."""
    head = "Archive member included to satisfy reference by file (symbol)"
    if head not in map_text:
        return {}
    table = map_text.split(head, 1)[1].lstrip("\n").split("\n\n", 1)[0]
    toks = table.split()
    why = {}
    for i in range(len(toks) - 2):
        m = re.search(r"\.a\(([^)]*)\)$", toks[i])
        if m and toks[i + 2].startswith("(") and m.group(1) not in why:
            r = re.search(r"\.a\(([^)]*)\)$", toks[i + 1])
            why[m.group(1)] = (r.group(1) if r else "the program", toks[i + 2].strip("()"))
    return why


def main():
    why = reasons(open(sys.argv[1], encoding="utf-8", errors="replace").read())
    for member in sys.argv[2:]:
        line, seen = member, {member}
        while member in why:
            member, symbol = why[member]
            line += f" <- {member} [{symbol}]"
            if member in seen:
                break
            seen.add(member)
        print(line)


if __name__ == "__main__":
    main()
