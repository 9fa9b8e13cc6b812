# tests/lib/server_test.sh - the start of a key-server shell test, sourced as
#
#   HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   . "$HERE/../lib/server_test.sh" "$@"
#
# Checks the one argument (the sbx under test; usage error, exit 2, otherwise),
# sets SBX to its absolute path, and sources kms.sh and check.sh.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH_TO_SBX" >&2
    exit 2
fi
SBX=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SBX_TEST_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=kms.sh
. "$SBX_TEST_LIB/kms.sh"
# shellcheck source=check.sh
. "$SBX_TEST_LIB/check.sh"
