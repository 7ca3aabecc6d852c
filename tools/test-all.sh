#!/usr/bin/env bash
# The README's test command: start every test server, build, run every test, and stop the
# servers again even when a test fails. The test summary is repeated as the last line.
set -uo pipefail
cd "$(dirname "$0")/.."

services() { node tools/services/services.mjs "$@"; }
log="$(mktemp "${TMPDIR:-/tmp}/persist-kit-tests-XXXXXX.log")"
finish() {
  services down
  grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1
  rm -f "$log"
}
trap finish EXIT

services up >/dev/null || exit 1
set -a
# shellcheck disable=SC1091
. ./.services/env
set +a

pnpm turbo run build || exit 1
pnpm vitest run 2>&1 | tee "$log"
