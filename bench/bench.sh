#!/usr/bin/env bash
# Throughput and memory of `sbx` against `age` (the reference CLI), as Monocypher's
# tests/speed prints ratios against its peers. Not part of the test suite: run it by hand.
#
#   bench/bench.sh                          # 1 GiB, best of 3
#   BENCH_MB=256 BENCH_RUNS=5 bench/bench.sh
#
# Knobs: BENCH_MB (size of the random input, default 1024), BENCH_RUNS (runs per
# large measurement, the best wall time is kept, default 3), BENCH_SMALL_RUNS
# (hyperfine runs for the 1 KiB whole-process case, default 300), AGE (peer binary,
# default /usr/bin/age), SBX (use this sbx binary instead of building build-bench/sbx).
#
# What it does: builds sbx (Release) into build-bench/, writes BENCH_MB MiB of random
# data to /dev/shm (RAM, so the disk is out of the picture), makes one X25519 key
# with age-keygen, checks that each tool decrypts the other's output, then times
#   encrypt and decrypt, output to /dev/null (stdout) and to a file in /dev/shm,
# for sbx and age alike (the decrypt input is the same age-written file for both),
# with /usr/bin/time for peak RSS; a 1 KiB file end to end with hyperfine (process
# start-up dominates); and `openssl speed` ChaCha20-Poly1305 on one core, the
# ceiling for the payload cipher (one core and all cores, -multi); and an 8 GiB
# round trip (BENCH_BIG_GB, 0 to skip) streamed from a generator through
# `sbx encrypt` to a file in BENCH_BIG_DIR (default /var/tmp) and back through
# `sbx decrypt`, with the SHA-256 of both ends and the peak RSS of each process.
# MB/s means 10^6 bytes per second throughout. Everything written is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
MB=${BENCH_MB:-1024}
RUNS=${BENCH_RUNS:-3}
SMALL_RUNS=${BENCH_SMALL_RUNS:-300}
AGE=${AGE:-/usr/bin/age}

for tool in "$AGE" age-keygen hyperfine openssl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/deps.sh)" >&2; exit 1; }
done

if [ -z "${SBX:-}" ]; then
  echo "bench: building sbx (Release) in build-bench/ ..."
  gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S . -B build-bench "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DSBX_BUILD_TESTS=OFF \
    -DSBX_BUILD_FUZZERS=OFF >/dev/null
  cmake --build build-bench --target sbx >/dev/null
  SBX=$root/build-bench/sbx
fi

work=$(mktemp -d /dev/shm/sbx-bench.XXXXXX)
BIG_GB=${BENCH_BIG_GB:-8}
big_dir=$(mktemp -d "${BENCH_BIG_DIR:-/var/tmp}/sbx-bench-big.XXXXXX")
trap 'rm -rf "$work" "$big_dir"' EXIT
trap 'exit 130' INT TERM

bytes=$((MB * 1024 * 1024))
in=$work/input.bin
key=$work/key.txt
echo "bench: writing $MB MiB of random data to $in ..."
openssl rand -out "$in" "$bytes"
age-keygen -o "$key" 2>/dev/null
recipient=$(age-keygen -y "$key")

# ---- environment ----
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo
echo "CPU:      $cpu ($(nproc) logical CPUs available)"
echo "kernel:   $(uname -sr), load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sbx:      $SBX ($("$SBX" --version 2>/dev/null | head -1 || echo '?'))"
echo "age:      $AGE $("$AGE" --version)"
echo "openssl:  $(openssl version)"
echo "input:    $MB MiB random in /dev/shm, X25519 recipient, best of $RUNS runs"

# ---- correctness first: each tool decrypts the other's file ----
want=$(sha256sum <"$in" | cut -d' ' -f1)
"$AGE" -e -r "$recipient" -o "$work/age.age" "$in"
"$SBX" encrypt -r "$recipient" -o "$work/sbx.age" "$in"
got_sbx=$("$SBX" decrypt -i "$key" "$work/age.age" | sha256sum | cut -d' ' -f1)
got_age=$("$AGE" -d -i "$key" "$work/sbx.age" | sha256sum | cut -d' ' -f1)
if [ "$got_sbx" != "$want" ] || [ "$got_age" != "$want" ]; then
  echo "bench: round trip FAILED (sbx decrypt of age: $got_sbx, age decrypt of sbx: $got_age)" >&2
  exit 1
fi
echo "check:    sbx decrypts age's file and age decrypts sbx's file (SHA-256 match)"
rm -f "$work/sbx.age"

# ---- large file: best wall time of RUNS, peak RSS ----
# measure STDOUT CMD...: runs CMD RUNS times with stdout to STDOUT; sets best (seconds)
# and rss (MiB, the highest of all runs). Removes $work/out.* before each run.
measure() {
  local stdout=$1 i t0 t1 t m
  shift
  best=
  rss=0
  for ((i = 0; i < RUNS; i++)); do
    rm -f "$work"/out.*
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$work/rss" "$@" >"$stdout"
    t1=$(date +%s%N)
    t=$(((t1 - t0) / 1000))
    m=$(tail -1 "$work/rss")
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    if [ "$m" -gt "$rss" ]; then rss=$m; fi
  done
  best=$(python3 -c "print(f'{$best / 1e6:.3f}')")
  rss=$(python3 -c "print(f'{$rss / 1024:.1f}')")
}

mbps() {
  python3 -c "print(f'{$bytes / $1 / 1e6:.0f}')"
}

ratio() {
  python3 -c "print(f'{$1 / $2:.2f}')"
}

summary=()
row() { # label sbx_seconds sbx_rss age_seconds age_rss
  local s_mb a_mb
  s_mb=$(mbps "$2")
  a_mb=$(mbps "$4")
  printf '%-24s sbx %8s s %7s MB/s %7s MiB | age %8s s %7s MB/s %7s MiB | sbx/age speed x%s, RSS x%s\n' \
    "$1" "$2" "$s_mb" "$3" "$4" "$a_mb" "$5" "$(ratio "$4" "$2")" "$(ratio "$3" "$5")"
  summary+=("| $1 | $s_mb | $a_mb | $(ratio "$4" "$2") | $3 | $5 |")
}

echo
echo "== $MB MiB, best of $RUNS (MB/s = 10^6 B/s; peak RSS = max over runs) =="
measure /dev/null "$SBX" encrypt -r "$recipient" "$in"
s=$best sr=$rss
measure /dev/null "$AGE" -e -r "$recipient" "$in"
row "encrypt -> /dev/null" "$s" "$sr" "$best" "$rss"

measure /dev/null "$SBX" encrypt -r "$recipient" -o "$work/out.age" "$in"
s=$best sr=$rss
measure /dev/null "$AGE" -e -r "$recipient" -o "$work/out.age" "$in"
row "encrypt -> /dev/shm file" "$s" "$sr" "$best" "$rss"

measure /dev/null "$SBX" decrypt -i "$key" "$work/age.age"
s=$best sr=$rss
measure /dev/null "$AGE" -d -i "$key" "$work/age.age"
row "decrypt -> /dev/null" "$s" "$sr" "$best" "$rss"

measure /dev/null "$SBX" decrypt -i "$key" -o "$work/out.bin" "$work/age.age"
s=$best sr=$rss
measure /dev/null "$AGE" -d -i "$key" -o "$work/out.bin" "$work/age.age"
row "decrypt -> /dev/shm file" "$s" "$sr" "$best" "$rss"
rm -f "$work"/out.* "$in"

# ---- 1 KiB file, whole process (start-up, key parsing, one chunk) ----
echo
echo "== 1 KiB file, whole process, hyperfine ($SMALL_RUNS runs, mean +- stddev) =="
small=$work/small.bin
head -c 1024 /dev/urandom >"$small"
"$AGE" -e -r "$recipient" -o "$small.age" "$small"
hf() { # json command
  hyperfine -N --warmup 20 --runs "$SMALL_RUNS" --export-json "$1" "$2" >/dev/null 2>"$1.err" ||
    { cat "$1.err" >&2; return 1; }
  python3 - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(f'{r["mean"] * 1e3:.2f} {r["stddev"] * 1e3:.2f}')
EOF
}
small_row() { # label sbx_cmd age_cmd
  local s a
  read -r s sd < <(hf "$work/s.json" "$2")
  read -r a ad < <(hf "$work/a.json" "$3")
  printf '%-24s sbx %6s +- %4s ms | age %6s +- %4s ms | sbx/age speed x%s\n' \
    "$1" "$s" "$sd" "$a" "$ad" "$(ratio "$a" "$s")"
  summary+=("| $1, ms per process | $s ms | $a ms | $(ratio "$a" "$s") | | |")
}
small_row "encrypt 1 KiB" "$SBX encrypt -r $recipient $small" "$AGE -e -r $recipient $small"
small_row "decrypt 1 KiB" "$SBX decrypt -i $key $small.age" "$AGE -d -i $key $small.age"

# ---- the cipher's ceiling on one core ----
echo
echo "== openssl speed -evp chacha20-poly1305 -bytes 65536 -seconds 3 (one core) =="
k=$(openssl speed -evp chacha20-poly1305 -bytes 65536 -seconds 3 2>/dev/null |
  awk '/^ChaCha20-Poly1305/ {v = $NF} END {sub(/k$/, "", v); print v}')
ossl=$(python3 -c "print(f'{$k * 1000 / 1e6:.0f}')")
echo "ChaCha20-Poly1305, 64 KiB blocks: $ossl MB/s"
for line in "${summary[@]:0:4}"; do
  label=$(echo "$line" | cut -d'|' -f2 | sed 's/^ *//; s/ *$//')
  sbx_mb=$(echo "$line" | cut -d'|' -f3 | tr -d ' ')
  printf '  sbx %-24s %6s MB/s = %s%% of one core of openssl\n' "$label" "$sbx_mb" \
    "$(python3 -c "print(f'{100 * $sbx_mb / $ossl:.0f}')")"
done

cores=$(nproc)
echo
echo "== openssl speed -evp chacha20-poly1305 -bytes 65536 -seconds 3 -multi $cores (all cores) =="
km=$(openssl speed -evp chacha20-poly1305 -bytes 65536 -seconds 3 -multi "$cores" 2>/dev/null |
  awk '/^evp/ || /^ChaCha20-Poly1305/ {v = $NF} END {sub(/k$/, "", v); print v}')
ossl_multi=$(python3 -c "print(f'{$km * 1000 / 1e6:.0f}')")
echo "ChaCha20-Poly1305, 64 KiB blocks, $cores processes: $ossl_multi MB/s"
for line in "${summary[@]:0:4}"; do
  label=$(echo "$line" | cut -d'|' -f2 | sed 's/^ *//; s/ *$//')
  sbx_mb=$(echo "$line" | cut -d'|' -f3 | tr -d ' ')
  printf '  sbx %-24s %6s MB/s = %s%% of openssl on all %s cores\n' "$label" "$sbx_mb" \
    "$(python3 -c "print(f'{100 * $sbx_mb / $ossl_multi:.0f}')")" "$cores"
done

# ---- a large round trip: constant memory whatever the size ----
if [ "$BIG_GB" -gt 0 ]; then
  echo
  echo "== $BIG_GB GiB round trip through $big_dir (generator -> sbx encrypt -> file -> sbx decrypt) =="
  big_bytes=$((BIG_GB * 1024 * 1024 * 1024))
  gen() { # a fast deterministic stream: AES-128-CTR keystream of zeros
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
      -iv 00000000000000000000000000000000 -in /dev/zero 2>/dev/null | head -c "$big_bytes"
  }
  set +o pipefail # the generator ends with SIGPIPE by design
  want_big=$(gen | sha256sum | cut -d' ' -f1)
  t0=$(date +%s%N)
  gen | /usr/bin/time -f '%M' -o "$work/rss_enc" "$SBX" encrypt -r "$recipient" -o "$big_dir/big.age"
  t1=$(date +%s%N)
  got_big=$(/usr/bin/time -f '%M' -o "$work/rss_dec" "$SBX" decrypt -i "$key" "$big_dir/big.age" |
    sha256sum | cut -d' ' -f1)
  t2=$(date +%s%N)
  set -o pipefail
  enc_rss=$(python3 -c "print(f'{$(tail -1 "$work/rss_enc") / 1024:.1f}')")
  dec_rss=$(python3 -c "print(f'{$(tail -1 "$work/rss_dec") / 1024:.1f}')")
  printf 'encrypt %s GiB: %.1f s, peak RSS %s MiB; decrypt: %.1f s, peak RSS %s MiB; SHA-256 %s\n' \
    "$BIG_GB" "$(python3 -c "print(($t1 - $t0) / 1e9)")" "$enc_rss" \
    "$(python3 -c "print(($t2 - $t1) / 1e9)")" "$dec_rss" \
    "$([ "$want_big" = "$got_big" ] && echo match || echo MISMATCH)"
  [ "$want_big" = "$got_big" ] || { echo "bench: $BIG_GB GiB round trip FAILED" >&2; exit 1; }
  rm -f "$big_dir/big.age"
fi

echo
echo "Markdown (for BENCHMARKS.md):"
echo "| case | sbx MB/s | age MB/s | sbx/age speed | sbx peak RSS MiB | age peak RSS MiB |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${summary[@]}"
echo "openssl ChaCha20-Poly1305 one core: $ossl MB/s"
