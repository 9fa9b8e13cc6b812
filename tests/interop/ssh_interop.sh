#!/usr/bin/env bash
# tests/interop/ssh_interop.sh SBX - SSH and PEM keys against the real age 1.1.1.
#
# For ssh-ed25519 and ssh-rsa keys made by ssh-keygen, and RSA keys made by
# openssl genpkey (PEM), files go both ways: encrypted by sbx and decrypted by
# age, and encrypted by age and decrypted by sbx. A 1024-bit key is refused,
# 4096 works; e = 35 works, crafted keys with a bad exponent or modulus are refused. Prints "N passed, M failed"; exits non-zero on any failure.
set -u
SBX=${1:?usage: ssh_interop.sh PATH_TO_SBX}
command -v age >/dev/null || { echo "FAIL - age not installed (run scripts/deps.sh)"; echo "0 passed, 1 failed"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
ko() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local name=$1; shift; if "$@" >/dev/null 2>err; then ok "$name"; else ko "$name"; sed 's/^/     /' err; fi; }
refuse() { local name=$1 want=$2; shift 2
  if "$@" >/dev/null 2>err; then ko "$name (accepted)"; elif grep -q -- "$want" err; then ok "$name"; else ko "$name (message)"; sed 's/^/     /' err; fi; }

head -c 200000 /dev/urandom >pt
: >empty

# both directions for one key: pubspec is "-r LINE" or "-R FILE"
both_ways() { local name=$1 sbx_id=$2 age_id=$3; shift 3
  for f in pt empty; do
    check "$name: sbx encrypts ($f), age decrypts" sh -c "\"$SBX\" encrypt $* -o $name.$f.sbx $f && age -d -i $age_id $name.$f.sbx | cmp - $f"
    check "$name: age encrypts ($f), sbx decrypts" sh -c "age $* -o $name.$f.age $f && \"$SBX\" decrypt -i $sbx_id -o $name.$f.out $name.$f.age && cmp $name.$f.out $f"
  done
  check "$name: armored, age -a to sbx" sh -c "age -a $* pt | \"$SBX\" decrypt -i $sbx_id | cmp - pt"
}

ssh-keygen -q -t ed25519 -N "" -C "interop ed25519" -f ed
ssh-keygen -q -t rsa -b 2048 -N "" -C "interop rsa" -f rsa
ssh-keygen -q -t rsa -b 4096 -N "" -f rsa4096
both_ways ssh-ed25519 ed ed -r "'$(cat ed.pub)'"
both_ways ssh-ed25519-R ed ed -R ed.pub
both_ways ssh-rsa rsa rsa -r "'$(cat rsa.pub)'"
both_ways ssh-rsa-4096 rsa4096 rsa4096 -R rsa4096.pub
printf 'restrict,from="10.0.0.0/8" %s\n# comment\n%s\n' "$(cat ed.pub)" "$(cat rsa.pub)" >authorized_keys
check "authorized_keys file: sbx -R, age decrypts with each key" sh -c "\"$SBX\" encrypt -R authorized_keys -o ak.age pt && age -d -i ed ak.age | cmp - pt && age -d -i rsa ak.age | cmp - pt"

# PEM keys from openssl; age reads the same keys in OpenSSH form.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out pem.key 2>/dev/null
openssl pkey -in pem.key -pubout -out pem.pub
openssl rsa -in pem.key -RSAPublicKey_out -out pem.pkcs1.pub 2>/dev/null
openssl rsa -in pem.key -traditional -out pem.pkcs1.key 2>/dev/null
ssh-keygen -i -m PKCS8 -f pem.pub >pem.ssh.pub
cp pem.key pem.ssh.key && chmod 600 pem.ssh.key && ssh-keygen -q -p -N "" -f pem.ssh.key >/dev/null 2>&1 # rewrite in OpenSSH form
check "ssh-keygen -y of the PEM key equals ssh-keygen -i of its public key" sh -c "ssh-keygen -y -f pem.key | cut -d' ' -f1,2 | cmp - pem.ssh.pub"
check "PEM SPKI: sbx encrypts, age -i (OpenSSH form) decrypts" sh -c "\"$SBX\" encrypt -R pem.pub -o p1.age pt && age -d -i pem.ssh.key p1.age | cmp - pt"
check "PEM SPKI: sbx encrypts, age -i (PEM key) decrypts" sh -c "age -d -i pem.key p1.age | cmp - pt"
check "PEM PKCS#1 public: sbx encrypts, age decrypts" sh -c "\"$SBX\" encrypt -R pem.pkcs1.pub -o p2.age pt && age -d -i pem.ssh.key p2.age | cmp - pt"
check "age encrypts to the converted key, sbx decrypts with the PKCS#8 PEM" sh -c "age -R pem.ssh.pub -o p3.age pt && \"$SBX\" decrypt -i pem.key p3.age | cmp - pt"
check "age encrypts to the converted key, sbx decrypts with the PKCS#1 PEM" sh -c "\"$SBX\" decrypt -i pem.pkcs1.key p3.age | cmp - pt"
check "age encrypts to the converted key, sbx decrypts with the OpenSSH form" sh -c "\"$SBX\" decrypt -i pem.ssh.key p3.age | cmp - pt"

# Refusals.
ssh-keygen -q -t rsa -b 1024 -N "" -f rsa1024
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out small.key 2>/dev/null
openssl pkey -in small.key -pubout -out small.pub
refuse "1024-bit ssh-rsa recipient refused" "1024 bits" "$SBX" encrypt -R rsa1024.pub pt
refuse "1024-bit PEM recipient refused" "1024 bits" "$SBX" encrypt -R small.pub pt
refuse "1024-bit identity refused" "1024 bits" "$SBX" decrypt -i rsa1024 ssh-rsa.pt.age
ssh-keygen -q -t ecdsa -N "" -f ec
refuse "ecdsa key reported by type" "ecdsa-sha2-nistp256" "$SBX" encrypt -R ec.pub pt
ssh-keygen -q -t ed25519 -N "secret phrase" -f edpass
refuse "passphrase-protected OpenSSH key explained" 'ssh-keygen -p -N ""' "$SBX" decrypt -i edpass ssh-ed25519.pt.age
refuse "wrong SSH key gives no match" "no identity matched" "$SBX" decrypt -i rsa ssh-ed25519.pt.age

# RSA exponent and modulus rules (issue 14, item 1). e = 35, as old OpenSSH made keys, keeps
# working both ways with age; keys crafted from a real 2048-bit modulus with e = 1 (RSA would be
# the identity: the file key in the clear), an even e, e > 2^32-1 or an even modulus are refused,
# as ssh-rsa lines (-r and -R) and as PEM SPKI and PKCS#1 blocks (-R), and nothing is written.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_keygen_pubexp:35 -out e35.key 2>/dev/null
openssl pkey -in e35.key -pubout -out e35.pub
ssh-keygen -i -m PKCS8 -f e35.pub >e35.ssh.pub
ssh-keygen -e -m PKCS8 -f e35.ssh.pub >e35.back.pub # and back to SPKI through ssh-keygen
check "e = 35: openssl made it (Exponent: 35)" sh -c "openssl pkey -pubin -in e35.pub -text -noout | grep -q 'Exponent: 35 '"
check "e = 35: sbx -r (ssh-rsa line), age decrypts" sh -c "\"$SBX\" encrypt -r '$(cat e35.ssh.pub)' -o e35r.age pt && age -d -i e35.key e35r.age | cmp - pt"
check "e = 35: sbx -R (ssh-rsa file), age decrypts" sh -c "\"$SBX\" encrypt -R e35.ssh.pub -o e35R.age pt && age -d -i e35.key e35R.age | cmp - pt"
check "e = 35: sbx -R (PEM from ssh-keygen -e), sbx decrypts" sh -c "\"$SBX\" encrypt -R e35.back.pub -o e35p.age pt && \"$SBX\" decrypt -i e35.key e35p.age | cmp - pt"
check "e = 35: age encrypts, sbx decrypts" sh -c "age -R e35.ssh.pub -o e35a.age pt && \"$SBX\" decrypt -i e35.key e35a.age | cmp - pt"
python3 - rsa.pub <<'PY' || ko "crafting RSA keys"
# From the real modulus of rsa.pub: ssh-rsa lines and PEM blocks with chosen exponents.
import base64, struct, sys
def take(b, o):
    n = struct.unpack(">I", b[o:o + 4])[0]
    return b[o + 4:o + 4 + n], o + 4 + n
blob = base64.b64decode(open(sys.argv[1]).read().split()[1])
_, o = take(blob, 0); _, o = take(blob, o); n, o = take(blob, o)
n = int.from_bytes(n, "big")
def mag(v):
    return v.to_bytes((v.bit_length() + 7) // 8, "big")
def sstr(b):
    return struct.pack(">I", len(b)) + b
def mpint(v):
    m = mag(v)
    return sstr(b"\0" + m if m[0] & 0x80 else m)
def der(tag, body):
    if len(body) < 128:
        return bytes([tag, len(body)]) + body
    ln = mag(len(body))
    return bytes([tag, 0x80 | len(ln)]) + ln + body
def dint(v):
    m = mag(v)
    return der(0x02, b"\0" + m if m[0] & 0x80 else m)
def pem(label, body):
    b = base64.b64encode(body).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)
rsa_oid = bytes.fromhex("06092a864886f70d0101010500")
for name, e, mod in [("e1", 1, n), ("e2", 2, n), ("ebig", 2**32 + 1, n), ("neven", 65537, n - 1), ("emax", 2**32 - 1, n)]:
    line = "ssh-rsa " + base64.b64encode(sstr(b"ssh-rsa") + mpint(e) + mpint(mod)).decode()
    open(name + ".line", "w").write(line + " crafted\n")
    pkcs1 = der(0x30, dint(mod) + dint(e))
    spki = der(0x30, der(0x30, rsa_oid) + der(0x03, b"\0" + pkcs1))
    open(name + ".spki", "w").write(pem("PUBLIC KEY", spki))
    open(name + ".pkcs1", "w").write(pem("RSA PUBLIC KEY", pkcs1))
PY
check "crafted e = 1 SPKI parses in openssl (a well-formed key)" sh -c "openssl pkey -pubin -in e1.spki -text -noout | grep -q 'Exponent: 1 '"
for c in "e1:public exponent is 1" "e2:public exponent is even" "ebig:larger than 2^32-1" "neven:modulus is even"; do
  k=${c%%:*} want=${c#*:}
  refuse "$k: -r ssh-rsa line refused" "$want" "$SBX" encrypt -r "$(cut -d' ' -f1,2 $k.line)" -o $k.r.age pt
  refuse "$k: -R ssh-rsa file refused" "$want" "$SBX" encrypt -R $k.line -o $k.R.age pt
  refuse "$k: -R PEM SPKI refused" "$want" "$SBX" encrypt -R $k.spki -o $k.s.age pt
  refuse "$k: -R PEM PKCS#1 refused" "$want" "$SBX" encrypt -R $k.pkcs1 -o $k.p.age pt
  check "$k: nothing written" sh -c "! ls $k.*.age 2>/dev/null | grep -q ."
done
check "e = 2^32-1 (the largest) accepted as -r, -R line and -R PEM" sh -c "\"$SBX\" encrypt -r '$(cut -d' ' -f1,2 emax.line)' -R emax.line -R emax.spki -R emax.pkcs1 -o emax.age pt"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
