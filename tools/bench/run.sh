#!/usr/bin/env bash
# pnpm bench [-- --quick] [--only file,redis] [--reps N] [--no-build]: starts private test servers,
# builds the packages, runs the harness, and stops the servers on exit, also when something fails.
set -euo pipefail
cd "$(dirname "$0")/../.."

# A state directory of its own, never the one of the developer's or the tests' servers: `down`
# at the end must stop only what this script started.
export PERSIST_KIT_SERVICES_DIR="${PERSIST_KIT_BENCH_SERVICES_DIR:-${TMPDIR:-/tmp}/persist-kit-bench-services}"

# The servers the selected families need (all of them by default).
only="file,memory,redis,postgres,mongo,fenced,backtest"
help=false
build=true
args=()
for arg in "$@"; do
  # --no-build is this script's own: the harness never sees it.
  if [[ "$arg" == "--no-build" ]]; then build=false; else args+=("$arg"); fi
done
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --only) only="${args[i + 1]:-}" ;;
    --only=*) only="${args[i]#--only=}" ;;
    --help | -h) help=true ;;
  esac
done
selected() { [[ ",$only," == *",$1,"* ]]; }
servers=()
# The fenced measurement runs on every backend, servers included.
if selected redis || selected backtest || selected fenced; then servers+=(redis); fi
if selected postgres || selected fenced; then servers+=(postgres); fi
if selected mongo || selected fenced; then servers+=(mongo); fi

run_harness() {
  cd tools/bench
  # --expose-gc: the runner collects garbage between blocks, not in the middle of one.
  node --expose-gc --import tsx src/main.ts "$@"
}

if $help; then
  run_harness "${args[@]}"
  exit
fi

if ((${#servers[@]} > 0)); then
  services() { node tools/services/services.mjs "$@"; }
  trap 'services down >&2 || true' EXIT
  services up --only "$(IFS=,; echo "${servers[*]}")" >/dev/null
  set -a
  # shellcheck disable=SC1091
  . "$PERSIST_KIT_SERVICES_DIR/env"
  set +a
fi

# A backend that does not build is reported by the harness as not available (or as measured from
# its previous build, flagged in the report), rather than stopping every other measurement.
# --no-build measures the packages as they are, for a tree where others are building them.
if ! $build; then
  export PERSIST_KIT_BENCH_BUILD_SKIPPED=1
elif ! pnpm turbo run build --continue --output-logs=errors-only --filter=@persist-kit/tools-bench... >&2; then
  echo "warning: some packages failed to build; see above" >&2
  export PERSIST_KIT_BENCH_BUILD_FAILED=1
fi

(run_harness "${args[@]}")
