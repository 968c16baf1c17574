#!/usr/bin/env bash
# Fails when generated code or CRDs differ from what hack/update-codegen.sh
# produces from the current sources. Works on a copy, so it never touches
# the working tree.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tar -C "$root" --exclude=./.git --exclude=./bin --exclude=./.cache -cf - . | tar -C "$tmp" -xf -
(cd "$tmp" && hack/update-codegen.sh >/dev/null)

status=0
for dir in pkg/generated pkg/apis manifests/crds manifests/install.yaml; do
  if ! diff -ruN "$root/$dir" "$tmp/$dir"; then
    status=1
  fi
done
if [[ $status -ne 0 ]]; then
  echo "generated files are out of date: run hack/update-codegen.sh (make codegen)" >&2
  exit 1
fi
echo "generated code and CRDs are up to date"
