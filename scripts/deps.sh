#!/usr/bin/env bash
# Installs every Debian package that building, testing, fuzzing and benchmarking
# Strongbox needs. Idempotent and quiet when everything is already present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config   # toolchain
  libssl-dev openssl                             # OpenSSL 3: every primitive
  libb2-dev                                      # BLAKE2b-256 (minisign key checksum): libb2.a in libstrongbox
  libcmocka-dev zlib1g-dev                       # unit tests, testkit (zlib vectors)
  libarchive-dev                                 # sbx migrate: reading seed tar.gz archives
  clang libclang-rt-14-dev                       # libFuzzer targets
  age openssh-client minisign expect perl python3 # interop peers and test drivers
  time                                           # /usr/bin/time -v: peak RSS in the migrate test
  e2fsprogs                                      # sbx destroy test: mkfs.ext4, filefrag
  hyperfine                                      # benchmarks
  libevent-dev libjansson-dev libsqlite3-dev     # key server: HTTP/TLS, JSON, embedded storage
  libpq-dev postgresql                           # key server: shared storage, and its tests
  libinih-dev libsystemd-dev                     # key server: --config FILE (inih), sd_notify
  curl jq                                        # key server API tests
  python3-dev python3-setuptools python3-venv    # the Python package (python/, issue 15)
  python3-pytest python3-persistent              # its tests; EncryptedPersistent
  python3-cryptography                           # its benchmark (ChaCha20Poly1305 loop)
  libcurl4-openssl-dev sqlite3                   # key server client (libcurl); record tests (sqlite3 shell)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
