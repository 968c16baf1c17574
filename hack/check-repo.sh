#!/usr/bin/env bash
# Fails when the repository tracks a built binary (an ELF file) or a large
# file other than the generated CRDs and install manifest: clones stay small.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

status=0
while IFS= read -r -d '' f; do
  [[ -f "$f" ]] || continue
  if [[ $(head -c 4 "$f" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; then
    echo "tracked built binary: $f (remove it with git rm --cached and ignore it)" >&2
    status=1
  fi
  size=$(stat -c %s "$f")
  if (( size > 1024 * 1024 )); then
    case "$f" in
      manifests/crds/*.yaml | manifests/install.yaml) ;;
      *) echo "tracked file over 1 MiB: $f ($size bytes)" >&2; status=1 ;;
    esac
  fi
done < <(git ls-files -z)
exit $status
