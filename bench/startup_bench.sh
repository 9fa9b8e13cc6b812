#!/usr/bin/env bash
# bench/startup_bench.sh [BUILD_DIR] - whole-process time of `sbx` against `age` on a
# 1 KiB file, where process start-up dominates (issue 13's target: sbx mean <= age mean,
# encrypt and decrypt, in the same `hyperfine -N` run). Prints ratios; not a timed test.
#
#   bench/startup_bench.sh               # BUILD_DIR defaults to build
#   BENCH_RUNS=1000 bench/startup_bench.sh build-bench
#
# Knobs: BENCH_RUNS (hyperfine runs per command, default 300), AGE (peer binary,
# default age on PATH). Builds the sbx target in BUILD_DIR first; time a Release or
# RelWithDebInfo build (the build type is printed).
#
# What it does: writes a 1 KiB random file to /dev/shm, makes an X25519 key with
# `sbx keygen` and a 1 KiB age file with `age`, then for encrypt and for decrypt runs
#   hyperfine -N --warmup 20 --runs BENCH_RUNS 'sbx ...' 'age ...'
# (output to /dev/null, no shell in between) and prints both means and sbx/age from
# hyperfine's JSON (computed with jq). Then what the dynamic loader does before main:
# the number of libraries `ldd sbx` lists and the relocations it processes
# (LD_DEBUG=statistics sbx --version). Everything written is removed on exit.
set -euo pipefail
build=${1:-build}
RUNS=${BENCH_RUNS:-300}
AGE=${AGE:-$(command -v age || true)}

for tool in "$AGE" hyperfine jq ldd cmake; do
    command -v "$tool" >/dev/null || { echo "startup_bench: ${tool:-age} is missing (scripts/deps.sh)" >&2; exit 1; }
done
[ -f "$build/CMakeCache.txt" ] ||
    { echo "startup_bench: $build is not a build directory (scripts/build.sh $build)" >&2; exit 1; }
cmake --build "$build" --target sbx >/dev/null
SBX=$(cd "$build" && pwd)/sbx

work=$(mktemp -d /dev/shm/sbx-startup-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
head -c 1024 /dev/urandom >"$work/small"
"$SBX" keygen -o "$work/key" 2>/dev/null
rcpt=$("$SBX" keygen -y "$work/key")
"$AGE" -r "$rcpt" -o "$work/small.age" "$work/small"
"$SBX" decrypt -i "$work/key" "$work/small.age" | cmp -s - "$work/small" ||
    { echo "startup_bench: sbx does not decrypt age's file" >&2; exit 1; }

btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
echo "CPU:    $(lscpu | sed -n 's/^Model name: *//p' | head -1) ($(nproc) logical CPUs)"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (load average before the run)"
echo "sbx:    $SBX ($("$SBX" --version | head -1), ${btype:-RelWithDebInfo (the default)} build)"
echo "age:    $AGE $("$AGE" --version)"
echo

# compare LABEL SBX_CMD AGE_CMD: one hyperfine run holding both commands; prints both
# means (ms) and sbx/age.
compare() {
    local json=$work/$1.json s sd a ad ratio
    hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$json" \
        -n sbx "$2" -n age "$3" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    read -r s sd a ad ratio < <(jq -r '.results as [$s, $a] |
        [$s.mean * 1e3, $s.stddev * 1e3, $a.mean * 1e3, $a.stddev * 1e3, $s.mean / $a.mean] |
        map(. * 1000 | round / 1000) | @tsv' "$json")
    printf '%-14s sbx %7.3f +- %6.3f ms | age %7.3f +- %6.3f ms | sbx/age %.2f (target <= 1: %s)\n' \
        "$1 1 KiB" "$s" "$sd" "$a" "$ad" "$ratio" \
        "$(jq -r '.results as [$s, $a] | if $s.mean <= $a.mean then "met" else "NOT met" end' "$json")"
}
echo "== 1 KiB, whole process: hyperfine -N --warmup 20 --runs $RUNS, sbx and age in one run =="
compare encrypt "$SBX encrypt -r $rcpt -o /dev/null $work/small" \
    "$AGE -r $rcpt -o /dev/null $work/small"
compare decrypt "$SBX decrypt -i $work/key -o /dev/null $work/small.age" \
    "$AGE -d -i $work/key -o /dev/null $work/small.age"

echo
echo "== what the dynamic loader does before sbx's main =="
echo "ldd sbx | wc -l: $(ldd "$SBX" | wc -l)"
stats=$(LD_DEBUG=statistics "$SBX" --version 2>&1 >/dev/null)
relocs=$(echo "$stats" | sed -n 's/.*final number of relocations: *//p' | tail -1)
relative=$(echo "$stats" | sed -n 's/.*number of relative relocations: *//p' | tail -1)
echo "relocations (LD_DEBUG=statistics sbx --version): ${relocs:-?} symbol, ${relative:-?} relative"
