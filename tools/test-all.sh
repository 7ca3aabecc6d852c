#!/usr/bin/env bash
# The README's test command: start every test server, build, run every test, and stop the
# servers again even when a test fails.
set -uo pipefail
cd "$(dirname "$0")/.."

services() { node tools/services/services.mjs "$@"; }
trap 'services down' EXIT

services up || exit 1
set -a
# shellcheck disable=SC1091
. ./.services/env
set +a

pnpm turbo run build || exit 1
pnpm vitest run
