#!/usr/bin/env bash
# Clones this repository's committed state into a temporary folder and runs
# `make verify` there with an empty Go module cache and GOPATH, as on a
# fresh machine: every module the checks need must be downloaded by the
# project's own scripts. Slow (it downloads every module); `make test` runs it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dask-operator-fresh-XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

git clone --quiet "$root" "$tmp/repo"
mkdir -p "$tmp/gomodcache" "$tmp/gopath"
log="$tmp/verify.log"
if ! (cd "$tmp/repo" && env GOMODCACHE="$tmp/gomodcache" GOPATH="$tmp/gopath" GOFLAGS=-modcacherw make verify) >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "FAIL: make verify in a fresh clone with an empty module cache (commit $(git -C "$root" rev-parse --short HEAD))" >&2
  exit 1
fi
echo "ok: make verify in a fresh clone with an empty module cache ($(find "$tmp/gomodcache/cache/download" -name '*.zip' | wc -l) modules downloaded)"
