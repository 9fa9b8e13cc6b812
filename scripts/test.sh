#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, and runs
#  1. a short libFuzzer smoke run of every fuzz target (clang),
#  2. every test (unit, testkit, CLI, interop with age, fuzz corpus replay)
#     on a warnings-as-errors build,
#  3. the same tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh

scripts/build.sh build -DSBX_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --test-dir build --output-on-failure -j2

scripts/build.sh build-asan -DSBX_WERROR=ON -DSBX_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2
