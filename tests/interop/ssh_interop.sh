#!/usr/bin/env bash
# tests/interop/ssh_interop.sh SBX - SSH and PEM keys against the real age 1.1.1.
#
# For ssh-ed25519 and ssh-rsa keys made by ssh-keygen, and RSA keys made by
# openssl genpkey (PEM), files go both ways: encrypted by sbx and decrypted by
# age, and encrypted by age and decrypted by sbx. A 1024-bit key is refused,
# 4096 works. Prints "N passed, M failed"; exits non-zero on any failure.
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

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
