#!/usr/bin/env bash
# tests/cli/parallel_test.sh - sbx encrypt/decrypt on several threads, random
# access with --offset/--length, and the progress bar.
#
#   bash tests/cli/parallel_test.sh build/sbx
#
# Prints one line per check, then "N passed, M failed"; exits non-zero on failure.
set -euo pipefail
[ $# -eq 1 ] && [ -x "$1" ] || { echo "usage: $0 PATH_TO_SBX" >&2; exit 2; }
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
T=$(mktemp -d "${TMPDIR:-/tmp}/sbx-par-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"

passed=0 failed=0
check() { # check NAME CMD...: passes when CMD exits 0
    local name=$1; shift
    if "$@" >/dev/null 2>err; then passed=$((passed + 1)); echo "ok   - $name"
    else failed=$((failed + 1)); echo "FAIL - $name"; sed 's/^/       /' err | head -5; fi
}
fails() { # fails NAME STATUS CMD...: passes when CMD exits with STATUS
    local name=$1 want=$2; shift 2
    set +e; "$@" >/dev/null 2>err; local rc=$?; set -e
    if [ "$rc" -eq "$want" ]; then passed=$((passed + 1)); echo "ok   - $name"
    else failed=$((failed + 1)); echo "FAIL - $name (exit $rc, want $want)"; sed 's/^/       /' err | head -5; fi
}

"$SBX" keygen -o key.txt 2>/dev/null
R=$("$SBX" keygen -y key.txt)
CH=65536
# Sizes around chunk (64 KiB) and slot (8 chunks = 512 KiB) boundaries.
for size in 0 1 $((CH - 1)) $CH $((CH + 1)) $((8 * CH)) $((8 * CH + 1)) $((16 * CH + 1)) $((40 * CH + 5)); do
    head -c "$size" /dev/urandom > "p$size"
    for j in 1 2 4; do
        "$SBX" encrypt -j "$j" -r "$R" -o "c$size.$j" "p$size"
    done
    check "size $size: -j 1/2/4 files have the same length" \
        test "$(stat -c %s "c$size.1")" = "$(stat -c %s "c$size.4")"
    for j in 1 2 4; do
        check "size $size: -j $j file decrypts on 3 threads" \
            bash -c "'$SBX' decrypt -j 3 -i key.txt 'c$size.$j' | cmp - 'p$size'"
        check "size $size: -j $j file decrypts serially" \
            bash -c "'$SBX' decrypt -j 1 -i key.txt 'c$size.$j' | cmp - 'p$size'"
    done
done

# Random access: compare ranges with the plaintext (dd gives the expected bytes).
P=p$((40 * CH + 5)) C=c$((40 * CH + 5)).2
SIZE=$(stat -c %s "$P")
range_ok() { # range_ok OFFSET LENGTH
    "$SBX" decrypt -i key.txt --offset "$1" --length "$2" -o got "$C" &&
        dd if="$P" of=want iflag=skip_bytes,count_bytes skip="$1" count="$2" status=none &&
        cmp got want
}
for r in "0 0" "0 1" "0 $CH" "$((CH - 3)) 6" "$CH 1" "$((3 * CH + 17)) $((5 * CH))" \
         "$((SIZE - 1)) 1" "$((SIZE - 10)) 100" "$SIZE 5" "$((SIZE + 99)) 5" "12345 $SIZE"; do
    set -- $r
    check "range offset $1 length $2" range_ok "$1" "$2"
done
check "--offset alone reads to the end" \
    bash -c "'$SBX' decrypt -i key.txt --offset $((SIZE - 70000)) '$C' | cmp - <(tail -c 70000 '$P')"
check "--length alone reads from the start" \
    bash -c "'$SBX' decrypt -i key.txt --length 100 '$C' | cmp - <(dd if='$P' bs=100 count=1 status=none)"
fails "--offset on standard input is a usage error" 2 \
    bash -c "'$SBX' decrypt -i key.txt --offset 5 - < '$C'"
fails "--offset with a negative number is a usage error" 2 "$SBX" decrypt -i key.txt --offset -5 "$C"
"$SBX" encrypt -a -r "$R" -o armored.age "$P"
fails "--offset on an armored file fails" 1 "$SBX" decrypt -i key.txt --offset 5 armored.age
"$SBX" keygen -o other.txt 2>/dev/null
fails "--offset with the wrong key fails" 1 "$SBX" decrypt -i other.txt --offset 5 "$C"

# flip_byte FILE OFFSET: change the byte at OFFSET (xor 1), whatever it was.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' \n')
    printf "\\$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# Tamper chunk 3: ranges inside it fail and write nothing; ranges outside still work.
cp "$C" tampered.age
HDR=$(( $(stat -c %s "$C") - SIZE - 41 * 16 )) # header + nonce
pos=$((HDR + 3 * (CH + 16) + 100))
flip_byte tampered.age "$pos"
rm -f got
fails "a range over a tampered chunk fails" 1 \
    "$SBX" decrypt -i key.txt --offset $((3 * CH + 10)) --length 10 -o got tampered.age
check "... and writes no output file" test ! -e got
check "a range before the tampered chunk still verifies" \
    bash -c "'$SBX' decrypt -i key.txt --offset 0 --length $((3 * CH)) tampered.age | cmp - <(dd if='$P' bs=$CH count=3 status=none)"
truncate -s -1 tampered.age
fails "a truncated file fails even for a range at its start" 1 \
    "$SBX" decrypt -i key.txt --offset 0 --length 10 tampered.age
fails "-j 0 is a usage error" 2 "$SBX" encrypt -j 0 -r "$R" -o x "$P"

# Progress bar: on a terminal for a big file, never when stderr is not a terminal.
head -c $((12 * 1024 * 1024)) /dev/zero > big
if command -v script >/dev/null; then
    script -qec "'$SBX' encrypt -r $R -o big.age big" /dev/null > tty.log 2>&1 || true
    check "a progress bar is drawn on a terminal" grep -q 'encrypting \[' tty.log
    script -qec "'$SBX' encrypt -q -r $R -o big.age big" /dev/null > tty.log 2>&1 || true
    check "--quiet turns it off" bash -c "! grep -q 'encrypting' tty.log"
else
    failed=$((failed + 1)); echo "FAIL - script(1) is missing (util-linux)"
fi
"$SBX" encrypt -r "$R" -o big.age big 2> notty.log
check "no progress bar when stderr is not a terminal" test ! -s notty.log
"$SBX" decrypt -i key.txt -o big.out big.age 2> notty.log
check "no progress bar on decrypt either" test ! -s notty.log
check "the 12 MiB round trip is exact" cmp big big.out

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
