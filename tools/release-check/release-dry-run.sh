#!/usr/bin/env bash
# The release procedure of the root README, step by step, in a fresh clone of the current commit,
# up to (not including) the real publish: version the packages from the pending changesets, then
# build, lint the packages and run a dry-run publish. The working tree is never touched.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
clone="$(mktemp -d "${TMPDIR:-/tmp}/persist-kit-release-XXXXXX")"
trap 'rm -rf "$clone"' EXIT

git clone --quiet --no-hardlinks "$repo" "$clone"
cd "$clone"
echo "release dry run in a clean clone of $(git rev-parse --short HEAD)"

pnpm install --frozen-lockfile --prefer-offline
pnpm changeset status
pnpm version-packages
changelogs=$(git status --porcelain -- 'packages/*/CHANGELOG.md' | wc -l)
bumped=$(git diff --name-only -- 'packages/*/package.json' | wc -l)
echo "versioned: $bumped package.json files bumped, $changelogs changelogs written"
if [ "$bumped" -eq 0 ] || [ "$changelogs" -eq 0 ]; then
  echo "release dry run: no pending changeset was applied" >&2
  exit 1
fi
git diff --stat -- 'packages/*/package.json'
pnpm release:check
echo "release dry run passed"
