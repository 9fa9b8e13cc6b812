#!/bin/sh
# bench/python_bench.sh - the Python package against sbx, python3-cryptography
# and tempfile, in one run (bench/python_bench.py says what is measured).
#
#   bench/python_bench.sh [build-dir]           BENCH_MB=1024 BENCH_RUNS=3 by default
#
# Installs python/ into BUILD/python-venv (as the test does), then runs.
set -eu
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
venv=$build/python-venv
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
SBX_BUILD_DIR=$build "$venv/bin/pip" install -q --no-build-isolation --force-reinstall --no-deps \
    "$root/python"
lscpu | sed -n 's/^Model name: *//p' | head -1
cd "$build"
exec "$venv/bin/python" "$root/bench/python_bench.py" "$build/sbx"
