#!/usr/bin/env bash
# tests/cli/json_names_test.sh SBX - every `sbx ... --json` on file names that
# are not plain ASCII (issue 13): one named with the byte 0xE9 (Latin-1 "é",
# not UTF-8) and one with a quote, a backslash, a newline and a UTF-8 "é".
# The output must parse; a string field holds U+FFFD for the bad byte and its
# sibling NAME_base64 decodes to the exact bytes (for inspect: a path that
# exists); a valid UTF-8 name comes back exactly, with no NAME_base64.
#
#   bash tests/cli/json_names_test.sh build/sbx
#
# Prints one line per check, then "N passed, M failed"; exits 1 if any failed.
set -u
SBX=$(cd "$(dirname "${1:?usage: json_names_test.sh path/to/sbx}")" && pwd)/$(basename "$1")
# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"
W=$(mktemp -d "${TMPDIR:-/tmp}/sbx-json-names.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
CHECK_SHOW=$W/err

BAD=$'caf\xe9'               # not UTF-8
ODD=$'q"b\\s\nl\xc3\xa9'     # quote, backslash, newline, UTF-8 e-acute

# json_name FILE LINE PATH NAME [exists]: line LINE (0-based) of FILE is JSON;
# the string at PATH (dot-separated keys and indexes) stands for NAME: exactly
# NAME when it is UTF-8, else U+FFFD for each bad byte plus PATH_base64 holding
# NAME's bytes. With "exists", the decoded bytes must name an existing file.
json_name() {
    python3 - "$@" <<'EOF'
import base64, json, os, sys
path, line, where, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], os.fsencode(sys.argv[4])
exists = len(sys.argv) > 5
try:
    text = open(path, "rb").read().decode("utf-8")
    obj = json.loads(text.split("\n")[line]) if line >= 0 else json.loads(text)
    *parents, key = where.split(".")
    for p in parents:
        obj = obj[int(p)] if isinstance(obj, list) else obj[p]
    value = obj[key]
    try:
        ok = value == name.decode("utf-8") and key + "_base64" not in obj
        raw = name
    except UnicodeDecodeError:
        raw = base64.b64decode(obj[key + "_base64"], validate=True)
        ok = value == name.decode("utf-8", "replace") and "\ufffd" in value and raw == name
    ok = ok and (not exists or os.path.exists(raw))
except (ValueError, LookupError, IndexError) as e:
    print(f"       {type(e).__name__}: {e}")
    ok = False
sys.exit(0 if ok else 1)
EOF
}

# json_has FILE PATH TEXT: the string at PATH contains TEXT, and PATH_base64 holds its exact bytes
json_has() {
    python3 - "$@" <<'EOF'
import base64, json, os, sys
try:
    obj = json.load(open(sys.argv[1], encoding="utf-8"))
    *parents, key = sys.argv[2].split(".")
    for p in parents:
        obj = obj[int(p)] if isinstance(obj, list) else obj[p]
    raw = base64.b64decode(obj[key + "_base64"], validate=True)
    sys.exit(0 if os.fsencode(sys.argv[3]) in raw and "\ufffd" in obj[key] else 1)
except (ValueError, LookupError, IndexError) as e:
    print(f"       {type(e).__name__}: {e}")
    sys.exit(1)
EOF
}

"$SBX" keygen -o k1 2>/dev/null
R1=$("$SBX" keygen -y k1)
"$SBX" keygen --sign -W -p ms.pub -s ms.key >/dev/null
openssl genpkey -algorithm ED25519 -out ed.pem 2>/dev/null
openssl pkey -in ed.pem -pubout -out ed.pub 2>/dev/null
head -c 3000 /dev/urandom >plain
K=$W # keys and plain; each section works in a directory of its own
section() {
    mkdir "$W/$1" && cd "$W/$1" && cp "$K/plain" .
}

# ---- pad, unpad ----
section pad
for n in "$BAD" "$ODD"; do
    cp plain "$n"
    "$SBX" pad --json "$n" >out.json 2>"$W/err"
    check "pad --json: file ($(printf %q "$n"))" json_name out.json -1 file "$n"
    "$SBX" unpad --json "$n" >out.json 2>"$W/err"
    check "unpad --json: file ($(printf %q "$n"))" json_name out.json -1 file "$n"
    "$SBX" pad --json -s 0 -o "$n.out" "$n" >out.json 2>"$W/err"
    check "pad -s 0 -o --json: file is the output ($(printf %q "$n"))" \
        json_name out.json -1 file "$n.out"
done

# ---- rotate, inspect ----
section rotate
for n in "$BAD" "$ODD"; do
    "$SBX" encrypt -r "$R1" -o "$n.age" plain
    "$SBX" rotate --json -i "$K/k1" -r "$R1" "$n.age" >out.json 2>"$W/err"
    check "rotate --json: file ($(printf %q "$n"))" json_name out.json -1 file "$n.age"
    "$SBX" rotate --json -i "$K/k1" -r "$R1" -o "$n.2.age" "$n.age" >out.json 2>"$W/err"
    check "rotate -o --json: file is the output ($(printf %q "$n"))" \
        json_name out.json -1 file "$n.2.age"
done
"$SBX" inspect --json "$BAD.age" "$ODD.age" >out.json 2>"$W/err"
check "inspect --json: one line per file" test "$(wc -l <out.json)" -eq 2
check "inspect --json: 0xE9 name, file_base64 names a file that exists" \
    json_name out.json 0 file "$BAD.age" exists
check "inspect --json: quote, backslash, newline, UTF-8 name comes back exactly" \
    json_name out.json 1 file "$ODD.age" exists

# ---- destroy ----
section destroy
cp plain "$BAD"
cp plain "$ODD"
"$SBX" destroy --json "$BAD" "$ODD" "$BAD.missing" >out.json 2>"$W/err"
check "destroy --json: 0xE9 name" json_name out.json -1 results.0.file "$BAD"
check "destroy --json: odd UTF-8 name" json_name out.json -1 results.1.file "$ODD"
check "destroy --json: a missing 0xE9 name" json_name out.json -1 results.2.file "$BAD.missing"
check "destroy --json: error_base64 holds the name's bytes" \
    json_has out.json results.2.error "$BAD.missing"

# ---- seal, unseal ----
section seal
for n in "$BAD" "$ODD"; do
    cp plain "$n"
    "$SBX" seal --json --meta -r "$R1" "$n" >out.json 2>"$W/err"
    check "seal --json: file ($(printf %q "$n"))" json_name out.json -1 results.0.file "$n"
    check "seal --json: output ($(printf %q "$n"))" json_name out.json -1 results.0.output "$n.age"
    "$SBX" unseal --json -i "$K/k1" "$n.age" >out.json 2>"$W/err"
    check "unseal --json: file ($(printf %q "$n"))" json_name out.json -1 file "$n.age"
    check "unseal --json: output ($(printf %q "$n"))" json_name out.json -1 output "$n"
    check "unseal --json: meta.name ($(printf %q "$n"))" json_name out.json -1 meta.name "$n"
done

# ---- sign, verify, keygen --sign ----
section sign
cp plain "$BAD"
"$SBX" sign --json -s "$K/ms.key" -m "$BAD" >out.json 2>"$W/err"
check "sign --json: the default trusted comment names the file; its _base64 has the bytes" \
    json_has out.json trusted_comment "file:$BAD"
for n in "$BAD" "$ODD"; do
    q=$(printf %q "$n")
    cp plain "$n"
    # -t: the default trusted comment holds the file name, and a name with a newline is refused
    "$SBX" sign --json -s "$K/ms.key" -t release -m "$n" >out.json 2>"$W/err"
    check "sign --json: file ($q)" json_name out.json -1 file "$n"
    check "sign --json: signature_file ($q)" json_name out.json -1 signature_file "$n.minisig"
    "$SBX" verify --json -p "$K/ms.pub" -m "$n" >out.json 2>"$W/err"
    check "verify --json: file ($q)" json_name out.json -1 file "$n"
    check "verify --json: signature_file ($q)" json_name out.json -1 signature_file "$n.minisig"
    echo changed >>"$n"
    "$SBX" verify --json -p "$K/ms.pub" -m "$n" >out.json 2>"$W/err"
    check "verify --json (failed): file ($q)" json_name out.json -1 file "$n"
    "$SBX" sign --json -s "$K/ed.pem" -m "$n" >out.json 2>"$W/err"
    check "sign --json (PEM): signature_file ($q)" json_name out.json -1 signature_file "$n.sig"
    "$SBX" verify --json -p "$K/ed.pub" -m "$n" >out.json 2>"$W/err"
    check "verify --json (PEM): file ($q)" json_name out.json -1 file "$n"
    "$SBX" keygen --sign --json -W -p "$n.pub" -s "$n.key" >out.json 2>"$W/err"
    check "keygen --sign --json: public_key_file ($q)" json_name out.json -1 public_key_file "$n.pub"
    check "keygen --sign --json: secret_key_file ($q)" json_name out.json -1 secret_key_file "$n.key"
done

finish
