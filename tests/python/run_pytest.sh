#!/usr/bin/env bash
# tests/python/run_pytest.sh BUILD_DIR [normal|asan] - install python/ into a
# venv under BUILD_DIR (Debian's python3, --system-site-packages for pytest,
# persistent, cryptography) and run its tests with python3 -X dev.
set -euo pipefail
build=$(cd "$1" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ "${2:-normal}" = asan ]; then
    echo "SKIPPED: the Python extension is not loaded under AddressSanitizer (python3 is" \
        "not instrumented); python/pytest runs in the normal build"
    exit 77
fi
py=/usr/bin/python3
venv=$build/python-venv
[ -x "$venv/bin/python" ] || "$py" -m venv --system-site-packages "$venv"
SBX_BUILD_DIR=$build "$venv/bin/pip" install -q --no-build-isolation --force-reinstall \
    --no-deps "$root/python"
cd "$build" # not python/: the source tree's strongbox/ has no compiled modules
SBX_BIN=$build/sbx SBX_BUILD_DIR=$build exec "$venv/bin/python" -X dev -m pytest -q \
    -p no:cacheprovider "$root/python/tests"
