#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz/ and runs each one for
# FUZZ_SECONDS seconds (default 20) on a scratch copy of its seed corpus, with its
# dictionary. The committed corpora in fuzz/corpora/ are never modified.
#
#   scripts/fuzz.sh                      # smoke run, 20 s per target (the suite uses 10-15 s)
#   FUZZ_SECONDS=600 scripts/fuzz.sh     # long run: 10 min per target
#   FUZZ_SECONDS=60 scripts/fuzz.sh header decrypt   # only some targets
#
# FUZZ_KEEP=1 keeps the scratch corpora, e.g. to merge new inputs into the committed
# seeds by hand: build-fuzz/fuzz/<name>_fuzzer -merge=1 fuzz/corpora/<name> <scratch>/<name>
#
# Exit status: 0 when no target crashed, 1 otherwise. A crash leaves its input in
# build-fuzz/crashes/<name>/ (crash-*, leak-*, timeout-*, oom-*) and prints the path;
# replay it with build-fuzz/fuzz/<name>_fuzzer <file>. Once fixed, copy it into
# fuzz/corpora/<name>/ so the ctest replay keeps it as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-20}
build=$root/build-fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then # every fuzz/<name>_fuzzer.c
  for src in fuzz/*_fuzzer.c; do
    name=${src#fuzz/}
    targets+=("${name%_fuzzer.c}")
  done
fi

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B "$build" "${gen[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSBX_BUILD_FUZZERS=ON -DSBX_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target "${targets[@]/%/_fuzzer}" >/dev/null

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sbx-fuzz.XXXXXX")
cleanup() {
  if [ "${FUZZ_KEEP:-0}" = 1 ]; then
    echo "fuzz: scratch corpora kept in $scratch"
  else
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for name in "${targets[@]}"; do
  bin=$build/fuzz/${name}_fuzzer
  corpus=$scratch/$name
  crashes=$build/crashes/$name
  log=$build/crashes/$name.log
  rm -rf "$crashes" "$log"
  mkdir -p "$corpus" "$crashes"
  [ -d "$root/fuzz/corpora/$name" ] && cp -r "$root/fuzz/corpora/$name/." "$corpus/"
  before=$(ls "$corpus" | wc -l)
  args=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 -print_final_stats=1
        -artifact_prefix="$crashes/")
  [ -f "$root/fuzz/$name.dict" ] && args+=(-dict="$root/fuzz/$name.dict")
  printf 'fuzz: %-8s %ss on %s seed(s)... ' "$name" "$seconds" "$before"
  start=$(date +%s)
  if "$bin" "${args[@]}" "$corpus" >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    echo "ok: ${runs} runs in $(( $(date +%s) - start ))s, coverage ${cov:-?} edges," \
      "corpus $before -> $(ls "$corpus" | wc -l)"
  else
    echo "CRASH"
    grep -E 'ERROR: |SUMMARY: |property failed|runtime error' "$log" | head -5 | sed 's/^/  /'
    for f in "$crashes"/*; do
      [ -f "$f" ] && echo "  input: $f (replay: $bin $f)"
    done
    echo "  full log: $log"
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} target(s) ran ${seconds}s each without a crash"
