#!/usr/bin/env bash
# tests/interop/destroy_ext4.sh - sbx destroy really overwrites the file's
# blocks on ext4 (issue 6, "Proof"). Needs root, mkfs.ext4 and filefrag
# (e2fsprogs) and a loop device; otherwise prints SKIP with the reason and
# exits 77 (reported as skipped by ctest).
#
# A small ext4 image is made in a temp dir and loop-mounted. Two files with
# recognisable patterns are written and synced; filefrag -v (FIEMAP) gives
# their physical blocks. One is destroyed with sbx destroy, the other only
# removed with rm (the control: it shows the check can see surviving data).
# After unmounting, the image bytes at the destroyed file's blocks must no
# longer hold its pattern, and the pattern must be nowhere in the image.
#
#   sudo bash tests/interop/destroy_ext4.sh build/sbx
set -u
SBX=$(realpath "$1")
W=$(mktemp -d /tmp/sbx-ext4-XXXXXX)
MNT="$W/mnt"
mounted=0
cleanup() {
    if [ $mounted -eq 1 ]; then umount "$MNT" 2>/dev/null; fi
    rm -rf "$W"
}
trap cleanup EXIT
pass=0
fail=0
ok() {
    echo "ok   - $1"
    pass=$((pass + 1))
}
bad() {
    echo "FAIL - $1"
    fail=$((fail + 1))
}
skip() {
    echo "SKIP - $1"
    echo "$pass passed, $fail failed"
    exit 77
}

[ "$(id -u)" -eq 0 ] || skip "not root: cannot loop-mount an ext4 image"
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 not installed (Debian package e2fsprogs)"
command -v filefrag >/dev/null || skip "filefrag not installed (Debian package e2fsprogs)"
command -v python3 >/dev/null || skip "python3 not installed"

mkdir -p "$MNT"
truncate -s 32M "$W/img" || skip "cannot create the image"
mkfs.ext4 -q -F -b 4096 "$W/img" >/dev/null 2>&1 || skip "mkfs.ext4 failed"
if ! mount -o loop "$W/img" "$MNT" 2>"$W/mount.err"; then
    skip "mount -o loop failed ($(tr '\n' ' ' <"$W/mount.err")) - no loop devices in this container?"
fi
mounted=1

# 300 KiB of a recognisable pattern per file (several extents' worth of blocks)
python3 -c "import sys; sys.stdout.write('SBX-DESTROY-PATTERN-0123456789\n' * 10000)" >"$MNT/secret.txt"
python3 -c "import sys; sys.stdout.write('SBX-CONTROL-PATTERN-9876543210\n' * 10000)" >"$MNT/control.txt"
sync

# physical blocks (fs blocks of 4096 bytes) from FIEMAP
blocks() {
    filefrag -v -b4096 "$1" | python3 -c '
import re, sys
for line in sys.stdin:
    m = re.match(r"\s*\d+:\s*\d+\.\.\s*\d+:\s*(\d+)\.\.\s*(\d+):", line)
    if m:
        print(m.group(1), m.group(2))'
}
blocks "$MNT/secret.txt" >"$W/secret.blocks"
blocks "$MNT/control.txt" >"$W/control.blocks"
if [ -s "$W/secret.blocks" ]; then ok "filefrag lists the file's extents"; else bad "filefrag lists the file's extents"; fi

# count pattern hits in the image at the given block ranges
hits() { # hits BLOCKFILE PATTERN
    python3 - "$W/img" "$1" "$2" <<'PY'
import sys
img, ranges, pat = sys.argv[1], sys.argv[2], sys.argv[3].encode()
n = 0
with open(img, "rb") as f:
    for line in open(ranges):
        a, b = map(int, line.split())
        f.seek(a * 4096)
        n += f.read((b - a + 1) * 4096).count(pat)
print(n)
PY
}
whole() { python3 -c "import sys; print(open(sys.argv[1],'rb').read().count(sys.argv[2].encode()))" "$W/img" "$1"; }

before=$(hits "$W/secret.blocks" SBX-DESTROY-PATTERN)
if [ "$before" -eq 10000 ]; then ok "before: the pattern is at those blocks (10000 copies)"; else bad "before: the pattern is at those blocks (found $before)"; fi

"$SBX" destroy --json "$MNT/secret.txt" >"$W/d.json" 2>"$W/d.err"
rc=$?
if [ $rc -eq 0 ]; then ok "sbx destroy succeeds"; else bad "sbx destroy succeeds ($(cat "$W/d.err"))"; fi
if python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['results'][0]; sys.exit(0 if d['fs_type']=='ext4' and d['bytes_overwritten']==310000 else 1)" "$W/d.json"; then
    ok "report: ext4, 310000 bytes overwritten"
else
    bad "report: ext4, 310000 bytes overwritten"
fi
rm "$MNT/control.txt"
umount "$MNT" && mounted=0

after=$(hits "$W/secret.blocks" SBX-DESTROY-PATTERN)
if [ "$after" -eq 0 ]; then ok "after: the pattern is gone from the file's old blocks"; else bad "after: $after copies remain at the file's old blocks"; fi
anywhere=$(whole SBX-DESTROY-PATTERN)
if [ "$anywhere" -eq 0 ]; then ok "after: the pattern is nowhere in the image"; else bad "after: $anywhere copies remain in the image"; fi
control=$(hits "$W/control.blocks" SBX-CONTROL-PATTERN)
if [ "$control" -gt 0 ]; then ok "control: a file removed with rm is still readable in the image ($control copies)"; else bad "control: rm'd file not found (the check would be blind)"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
