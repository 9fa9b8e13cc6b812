#!/usr/bin/env bash
# tests/cli/args_test.sh SBX - the arguments of every sbx command (issue 14,
# items 9 and 12): one meaning per short flag across commands, argument errors
# that stop a command (exit 2) before it changes or destroys anything, the
# list of commands in every overview and usage, seal given a directory, and
# the permission warning of a key server token file.
#
# Prints one line per check and "N passed, M failed"; exits 1 on any failure.
set -u
SBX=${1:?usage: args_test.sh path/to/sbx}
SBX=$(cd "$(dirname "$SBX")" && pwd)/$(basename "$SBX")
. "$(dirname "$0")/../lib/check.sh"
W=$(mktemp -d /tmp/sbx-args.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
CHECK_SHOW=$W/err

# fails_2 NAME CMD...: exit status 2 and a message.
fails_2() {
    local name=$1
    shift
    "$@" >out 2>err
    local st=$?
    if [ "$st" = 2 ] && [ -s err ]; then ok "$name"; else not_ok "$name (exit $st)"; fi
}
# snapshot/unchanged: every file of the directory with its content hash.
snapshot() { find . -path ./snap -prune -o -type f ! -name out ! -name err -print0 | sort -z |
    xargs -0 sha256sum >snap; }
unchanged() { find . -path ./snap -prune -o -type f ! -name out ! -name err -print0 | sort -z |
    xargs -0 sha256sum | cmp -s - snap; }

"$SBX" keygen -o key.txt 2>/dev/null
R=$("$SBX" keygen -y key.txt)
echo "data" >data.csv
"$SBX" encrypt -r "$R" -o sealed.csv.age data.csv
cp sealed.csv.age keep.age

# ---------------------------------------------------------------- one meaning per short flag
# The OPTIONS of every manual page, "-X, --long": among sbx's own flags (all pages but
# the minisign ones: sign, verify, keygen-sign) a letter stands for one long option.
pages="keygen encrypt decrypt migrate seal unseal destroy rotate pad unpad inspect kms help"
for p in $pages; do
    "$SBX" help "$p" | sed -n '/^OPTIONS/,/^[A-Z]/p' |
        sed -nE 's/^ +(-[A-Za-z]), (--[a-z-]+).*/\1 \2/p' | sed "s/^/$p /"
done >flags
check "the manual pages list short flags" test "$(wc -l <flags)" -gt 20
conflicts=$(awk '{ if ($2 in long && long[$2] != $3) print $2 ": " long[$2] " and " $3; long[$2] = $3 }' flags)
check "no short flag means two options ($conflicts)" test -z "$conflicts"
check "-j is --threads wherever it exists" \
    test -z "$(awk '$2 == "-j" && $3 != "--threads"' flags)"
for p in $pages sign verify keygen-sign; do
    "$SBX" help "$p" | grep -E '^ +-[A-Za-z], --json' >/dev/null && not_ok "--json has a short form in $p"
done
ok "--json has no short form in any command"

# seal -r KEY -j 4 FILE printed JSON, failed on 4, and sealed FILE (the report of issue 14).
snapshot
fails_2 "seal -j 4: a usage error" "$SBX" seal -r "$R" -j 4 data.csv
check "seal -j 4: data.csv unchanged, nothing written" unchanged
check "seal -j 4: says --json has no short form" grep -q -- '--json has no short form' err
check "seal -j 4: no JSON on standard output" test ! -s out
fails_2 "unseal -j: a usage error" "$SBX" unseal -i key.txt -j sealed.csv.age
check "unseal -j: nothing changed" unchanged
fails_2 "destroy -j: a usage error" "$SBX" destroy -j data.csv
check "destroy -j: data.csv still there" unchanged
fails_2 "seal -s (was --strict; -s is pad's --size): a usage error" "$SBX" seal -r "$R" -s data.csv
check "seal -s: nothing changed" unchanged
"$SBX" seal -r "$R" --strict --json --keep data.csv >out 2>err
check "seal --strict --json (long forms) still work" python3 -c 'import json; json.load(open("out"))' 
rm -f data.csv.age
snapshot

# ---------------------------------------------------------------- argument errors before any work
# A bad argument after valid ones: exit 2, every file as it was, no output.
fails_2 "seal: an option after the files" "$SBX" seal -r "$R" data.csv --json
check "seal: an option after the files: nothing changed" unchanged
check "seal: the message says options go before operands" grep -q 'options go before' err
fails_2 "seal: a bad --passes after valid options" "$SBX" seal -r "$R" --keep --passes 0 data.csv
check "seal: a bad --passes: nothing changed" unchanged
fails_2 "seal: an unknown option after valid ones" "$SBX" seal -r "$R" --meta --bogus data.csv
check "seal: an unknown option: nothing changed" unchanged
fails_2 "seal -R - (standard input) and an option after the files" "$SBX" seal -R - data.csv --x </dev/null
check "seal -R -: nothing changed" unchanged

fails_2 "destroy: an option after the files" "$SBX" destroy data.csv --passes 3
check "destroy: an option after the files: nothing destroyed" unchanged
fails_2 "destroy: a bad --passes after valid options" "$SBX" destroy --force --passes 99 data.csv
check "destroy: a bad --passes: nothing destroyed" unchanged
fails_2 "destroy: an unknown option after valid ones" "$SBX" destroy --json --bogus data.csv
check "destroy: an unknown option: nothing destroyed" unchanged
check "destroy: no JSON printed for a usage error" test ! -s out
"$SBX" destroy -- data.csv >/dev/null 2>&1
check "destroy -- FILE still destroys FILE" test ! -e data.csv
echo "data" >data.csv
echo "x" >./-n
"$SBX" destroy -- -n >/dev/null 2>&1
check "destroy -- -n destroys the file named -n" test ! -e ./-n
snapshot

fails_2 "unseal: an option after the file" "$SBX" unseal -i key.txt sealed.csv.age --keep
check "unseal: an option after the file: nothing changed" unchanged
check "unseal: no output" test ! -e sealed.csv
printf 'pw\n' >pw.txt
snapshot
fails_2 "unseal: an unknown option after a passphrase file" \
    "$SBX" unseal --passphrase-file pw.txt --json --bogus sealed.csv.age
check "unseal: nothing changed" unchanged

fails_2 "rotate: an option after the file" "$SBX" rotate -i key.txt -r "$R" sealed.csv.age --rekey
check "rotate: an option after the file: nothing changed" unchanged
fails_2 "rotate: an unknown option after valid ones" \
    "$SBX" rotate -i key.txt -r "$R" -o new.age --bogus sealed.csv.age
check "rotate: an unknown option: nothing changed, no output" unchanged
check "rotate: no new.age" test ! -e new.age

fails_2 "pad: an option after the file" "$SBX" pad data.csv -s 4096
check "pad: an option after the file: nothing changed" unchanged
fails_2 "pad: a bad size after valid options" "$SBX" pad --json -o padded -s bogus data.csv
check "pad: a bad size: nothing changed, no output" unchanged
check "pad: no padded" test ! -e padded
"$SBX" pad -o padded.csv data.csv >/dev/null 2>&1
snapshot
fails_2 "unpad: an option after the file" "$SBX" unpad padded.csv --lenient
check "unpad: an option after the file: nothing changed" unchanged
fails_2 "unpad: -s (pad's) after valid options" "$SBX" unpad --json -s 4096 padded.csv
check "unpad: -s: nothing changed" unchanged

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null
openssl pkey -in rsa.pem -pubout -out rsa.pub 2>/dev/null
mkdir pfs
printf '#%s' "$(openssl rand -hex 32)" >pfs/pwd
openssl enc -aes-256-cbc -a -salt -md sha256 -in data.csv -out pfs/data.csv.aes256 \
    -pass file:pfs/pwd 2>/dev/null
openssl pkeyutl -encrypt -pubin -inkey rsa.pub -pkeyopt rsa_padding_mode:oaep -in pfs/pwd \
    -out pfs/data.csv.aes256.pwdrsa 2>/dev/null
tar -C pfs -czf archive.enc data.csv.aes256 data.csv.aes256.pwdrsa
rm -rf pfs
snapshot
fails_2 "migrate: an option after the archive" \
    "$SBX" migrate -i rsa.pem -r "$R" --delete-original archive.enc --md md5
check "migrate: an option after the archive: archive kept, no output" unchanged
fails_2 "migrate: a bad --md after valid options" \
    "$SBX" migrate -i rsa.pem -r "$R" --delete-original --md sha1 archive.enc
check "migrate: a bad --md: archive kept, no output" unchanged
"$SBX" migrate -i rsa.pem -r "$R" -o migrated.age archive.enc >/dev/null 2>err
check "migrate: the same archive with good arguments migrates" \
    sh -c "'$SBX' decrypt -i key.txt migrated.age | cmp -s - data.csv"
rm -f migrated.age
snapshot

fails_2 "encrypt: an option after INPUT" "$SBX" encrypt -r "$R" -o x.age data.csv --armor
check "encrypt: an option after INPUT: no output" test ! -e x.age
fails_2 "decrypt: an option after INPUT" "$SBX" decrypt -i key.txt -o x sealed.csv.age -q
check "decrypt: an option after INPUT: no output" test ! -e x
fails_2 "decrypt --offset from standard input: a usage error before the identity is read" \
    sh -c "'$SBX' decrypt --offset 3 -i missing.txt < sealed.csv.age"
check "decrypt --offset from standard input: the message is about the range" grep -q -- '--offset' err
fails_2 "keygen: an option after FILE" "$SBX" keygen -y key.txt -o pub.txt
check "keygen: no output" test ! -e pub.txt
fails_2 "sign: an option after FILE" "$SBX" sign -s rsa.pem data.csv --pem
check "sign: no signature" test ! -e data.csv.sig
fails_2 "inspect: an option after FILE" "$SBX" inspect sealed.csv.age --json
check "every usage error left the files as they were" unchanged

# ---------------------------------------------------------------- seal given a directory
mkdir dir
echo a >dir/a
"$SBX" seal -r "$R" data.csv dir >out 2>err
st=$?
check "seal DIR: a usage error (exit 2)" test "$st" = 2
check "seal DIR: says it is a directory" grep -q 'dir is a directory' err
check "seal DIR: says what to do" grep -q 'dir/\*' err
check "seal DIR: no hard-link warning" sh -c '! grep -q "hard link" err'
check "seal DIR: the directory comes first in the messages" \
    sh -c 'head -n1 err | grep -q directory'
check "seal DIR: the other file is not sealed either" sh -c 'test -f data.csv && test ! -e data.csv.age'
check "seal DIR: the directory is untouched" test -f dir/a

# ---------------------------------------------------------------- every command listed
commands="keygen encrypt decrypt migrate seal unseal destroy sign verify rotate pad unpad inspect kms help"
"$SBX" >bare.txt 2>&1
"$SBX" --help >dashhelp.txt 2>&1
"$SBX" help >help.txt 2>&1
"$SBX" help nosuch >nosuch.txt 2>&1
st=$?
check "sbx help nosuch: a usage error" test "$st" = 2
"$SBX" nosuch >unknown.txt 2>&1
for f in bare.txt dashhelp.txt help.txt nosuch.txt unknown.txt; do
    missing=""
    for c in $commands; do
        grep -qE "(^|[ ,])$c(,|$| )" "$f" || missing="$missing $c"
    done
    check "$f lists every command (missing:$missing)" test -z "$missing"
done
sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' help.txt >synopsis.txt
missing=""
for c in $commands; do grep -q "^    sbx $c" synopsis.txt || missing="$missing $c"; done
check "the overview's SYNOPSIS has every command (missing:$missing)" test -z "$missing"
sed -n '/^COMMANDS/,/^$/p' help.txt | sed -nE 's/^    ([a-z]+) .*/\1/p' >listed.txt
check "the overview's COMMANDS are the 15 commands" test "$(tr '\n' ' ' <listed.txt)" = "$commands "
for c in $(cat listed.txt); do
    "$SBX" help "$c" >/dev/null 2>&1 || not_ok "sbx help $c (listed) has a page"
done
ok "every listed command has a manual page"
check "sbx --help is sbx help" cmp -s dashhelp.txt help.txt

# ---------------------------------------------------------------- key server token file
echo "token-value" >token
chmod 644 token
SBX_KMS_TOKEN_FILE=$W/token SBX_KMS_TOKEN= "$SBX" encrypt --kms https://127.0.0.1:1/k -o t.age \
    data.csv >/dev/null 2>err
check "SBX_KMS_TOKEN_FILE readable by others: warned" \
    grep -q 'token file (SBX_KMS_TOKEN_FILE) .*token is readable by others (mode 0644); run chmod 600' err
check "the warning does not show the token" sh -c '! grep -q token-value err'
check "the warning comes once" test "$(grep -c 'readable by others' err)" = 1
chmod 600 token
SBX_KMS_TOKEN_FILE=$W/token "$SBX" encrypt --kms https://127.0.0.1:1/k -o t.age data.csv \
    >/dev/null 2>err
check "SBX_KMS_TOKEN_FILE mode 0600: no warning" sh -c '! grep -q "readable by others" err'
chmod 640 token
SBX_KMS_TOKEN=abc SBX_KMS_TOKEN_FILE=$W/token "$SBX" encrypt --kms https://127.0.0.1:1/k \
    -o t.age data.csv >/dev/null 2>err
check "SBX_KMS_TOKEN set (the file is not read): no warning" sh -c '! grep -q "readable by" err'
"$SBX" encrypt --kms-token-file token --kms https://127.0.0.1:1/k -o t.age data.csv \
    >/dev/null 2>err
check "--kms-token-file readable by the group: warned" grep -q 'token file token is readable' err
check "no output from the failed encryptions" test ! -e t.age

finish
