#!/usr/bin/env bash
# Builds the real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl), kwok and Kueue's
# controller manager from the Go module proxy, once, into a cache folder
# keyed by the tools module's content, and prints that folder. Later calls
# reuse the cached binaries. Kueue's CRDs and webhook configuration, from
# its module, go to ../kueue beside the binaries.
#
#   hack/tools.sh            build if needed, print the bin folder
#
# DASK_OPERATOR_TOOLS_CACHE overrides the cache root (default: the user cache dir).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_mod="$root/hack/tools"
KUBE_VERSION=v1.37.2
KWOK_VERSION=v0.8.0
KUEUE_VERSION=v0.17.0

cache_root=${DASK_OPERATOR_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dask-operator/tools}
key=$(cd "$tools_mod" && cat go.mod go.sum $(find . -name '*.go' | sort) | sha256sum | cut -c1-16)
bin="$cache_root/$key/bin"
stamp="$cache_root/$key/.complete"
kueue_stamp="$cache_root/$key/.kueue-$KUEUE_VERSION"

# Kueue, built on its own (its module has its own dependencies, kept out of
# ours and out of the control plane's): a test tool for the Kueue tests.
build_kueue() {
  echo "  go install kueue $KUEUE_VERSION (first time only, a few minutes)" >&2
  CGO_ENABLED=0 GOBIN="$bin" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kueue/cmd/kueue@$KUEUE_VERSION"
  local dir
  dir=$(cd "$tools_mod" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kueue@$KUEUE_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  if [[ -z "$dir" || ! -d "$dir/config/components/crd/bases" ]]; then
    echo "tools.sh: could not find the downloaded kueue module (got dir \"$dir\")" >&2
    exit 1
  fi
  rm -rf "$cache_root/$key/kueue"
  mkdir -p "$cache_root/$key/kueue/crds"
  cp "$dir"/config/components/crd/bases/*.yaml "$cache_root/$key/kueue/crds/"
  cp "$dir"/config/components/webhook/manifests.yaml "$cache_root/$key/kueue/webhooks.yaml"
  chmod -R u+w "$cache_root/$key/kueue"
  touch "$kueue_stamp"
}

if [[ -f "$stamp" ]]; then
  [[ -f "$kueue_stamp" ]] || build_kueue
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
ldflags="-s -w \
  -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
  -X k8s.io/component-base/version.gitMajor=1 \
  -X k8s.io/component-base/version.gitMinor=37 \
  -X k8s.io/component-base/version.gitTreeState=clean \
  -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION \
  -X k8s.io/client-go/pkg/version.gitMajor=1 \
  -X k8s.io/client-go/pkg/version.gitMinor=37"

echo "building control plane $KUBE_VERSION into $bin (first time only, several minutes)" >&2
(
  cd "$tools_mod"
  for cmd in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    echo "  go build $cmd" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd" "./$cmd"
  done
)

echo "  go install kwok $KWOK_VERSION" >&2
CGO_ENABLED=0 GOBIN="$bin" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"

# kwok's stage definitions (what makes pods Running and Ready) ship in its module.
kwok_dir=$(cd "$tools_mod" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
if [[ -z "$kwok_dir" || ! -d "$kwok_dir/kustomize/stage" ]]; then
  echo "tools.sh: could not find the downloaded kwok module (got dir \"$kwok_dir\")" >&2
  exit 1
fi
rm -rf "$cache_root/$key/kwok-stages"
mkdir -p "$cache_root/$key/kwok-stages"
cp "$kwok_dir"/kustomize/stage/node/fast/node-*.yaml "$kwok_dir"/kustomize/stage/pod/fast/pod-*.yaml "$cache_root/$key/kwok-stages/"
chmod -R u+w "$cache_root/$key/kwok-stages"

build_kueue
touch "$stamp"
echo "$bin"
