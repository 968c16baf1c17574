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

# The operator and the kubectl plugin share the module, not code: the
# operator links nothing of the plugin (nor cli-runtime, cobra), and the
# plugin none of the controllers.
module=$(go list -m)
if go list -deps ./cmd/dask-operator | grep -E "^($module/pkg/daskctl|$module/cmd/kubectl-dask|k8s.io/cli-runtime|github.com/spf13/cobra)(/|$)"; then
  echo "the operator binary imports the kubectl plugin's code (above)" >&2
  status=1
fi
if go list -deps ./cmd/kubectl-dask | grep -E "^$module/pkg/(controller|daskapi|expectations)(/|$)"; then
  echo "the kubectl plugin imports the operator's controllers (above)" >&2
  status=1
fi
# Kueue is reached through the dynamic client: neither Kueue's packages nor
# controller-runtime (which they import) are linked into the operator.
if go list -deps ./cmd/dask-operator | grep -E "^(sigs.k8s.io/controller-runtime|sigs.k8s.io/kueue)(/|$)"; then
  echo "the operator binary links controller-runtime or Kueue's packages (above)" >&2
  status=1
fi
# One controller per kind: no kind's package imports another's (nor the
# manager); what they share is in pkg/controller.
kinds=(cluster workergroup job autoscaler)
for k in "${kinds[@]}"; do
  others=$(printf '%s|' "${kinds[@]/#/$module/pkg/controller/}" "$module/pkg/controller/manager" | sed "s#$module/pkg/controller/$k|##; s/|$//")
  if go list -deps "./pkg/controller/$k" | grep -E "^($others)$"; then
    echo "pkg/controller/$k imports another kind's controller (above)" >&2
    status=1
  fi
done
exit $status
