#!/bin/sh
# bench/tmpfile_bench.sh - encrypted temporary files against tmpfile(3), same run.
#
#   bench/tmpfile_bench.sh [build-dir] [extra tmpfile_bench options]
#
# Builds the tmpfile_bench target (tests/tmpfile/CMakeLists.txt) and runs it
# for both ciphers: 1 GiB sequential write then read in 1 MiB calls, and
# 100000 random 4 KiB reads/writes on a 256 MiB file, all in /tmp.
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
cmake --build "$build" --target tmpfile_bench >/dev/null
lscpu | sed -n 's/^Model name: *//p' | head -1
for cipher in aes chacha; do
    "$build/tmpfile_bench" -s 1024 -n 100000 -r 256 -c "$cipher" "$@"
    echo
done
