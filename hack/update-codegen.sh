#!/usr/bin/env bash
# Regenerates everything derived from the API types in pkg/apis:
#   - deepcopy functions (zz_generated.deepcopy.go)
#   - the typed clientset, listers, informers and apply configurations (pkg/generated)
#   - the CustomResourceDefinitions (manifests/crds)
# using the code-generator and controller-gen versions pinned in go.mod.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
module=$(go list -m)

CODEGEN_PKG=$(go list -m -f '{{.Dir}}' k8s.io/code-generator)
# shellcheck source=/dev/null
source "$CODEGEN_PKG/kube_codegen.sh"

kube::codegen::gen_helpers \
  --boilerplate "$root/hack/boilerplate.go.txt" \
  "$root/pkg/apis"

kube::codegen::gen_client \
  --with-watch \
  --with-applyconfig \
  --output-dir "$root/pkg/generated" \
  --output-pkg "$module/pkg/generated" \
  --boilerplate "$root/hack/boilerplate.go.txt" \
  "$root/pkg/apis"

# Full PodSpec descriptions would make DaskJob (three PodSpecs) larger than
# etcd's object limit; hack/crd-trim keeps our own field descriptions and drops
# the ones of embedded Kubernetes types, which `kubectl explain pod.spec` has.
rm -rf "$root/manifests/crds"
go tool controller-gen crd:allowDangerousTypes=false \
  paths="./pkg/apis/..." \
  output:crd:artifacts:config="$root/manifests/crds"
go run ./hack/crd-trim "$root"/manifests/crds/*.yaml
