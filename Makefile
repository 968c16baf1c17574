# dask-operator: see README.md.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin/dask-operator
GOFILES := $(shell git ls-files '*.go' 2>/dev/null)
TEST_TIMEOUT ?= 40m

# hack/nodeagent is a Go module of its own (a test tool: its dependencies
# stay out of the operator's go.mod); its tests and checks run with ours.
NODEAGENT := hack/nodeagent

.PHONY: all build test test-unit verify codegen manifests lint dev tools images deps bench faults clean

all: build

## build: the operator binary, bin/dask-operator, and the kubectl plugin, bin/kubectl-dask
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(BIN) ./cmd/dask-operator
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o bin/kubectl-dask ./cmd/kubectl-dask

## tools: build (once) the local Kubernetes control plane used by tests and `make dev`
tools:
	@hack/tools.sh

## images: build (once) the roots the process node runs Dask images in (Debian 12's, Debian 13's
##         and the current Dask from ../shared/dask-current; README, "Dask versions")
images:
	@hack/dask-images.sh

## deps: the system packages tests and real Pods need (Debian's python3-distributed, iproute2)
deps:
	@hack/ensure-deps.sh

## test: unit (with the race detector), integration (a short fault run among them) and
##       end-to-end tests, then `make verify` in a fresh clone with an empty module cache
# System packages are checked first (before a long first build of the
# control plane). The end-to-end and migration tests run real Dask processes,
# and the MultiKueue test two more control planes: they go after the others,
# one package at a time, so that two cores are not shared by all at once.
test:
	@hack/ensure-deps.sh --incumbent
	@hack/dask-images.sh >/dev/null
	@hack/tools.sh >/dev/null
	@$(MAKE) --no-print-directory test-unit
	DASK_OPERATOR_TOOLS_BIN=$$(hack/tools.sh) DASK_OPERATOR_IMAGES=$$(hack/dask-images.sh) $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $$($(GO) list ./... | grep -v '/pkg/e2e$$\|/pkg/migration$$\|/pkg/integration/multikueue$$')
	DASK_OPERATOR_TOOLS_BIN=$$(hack/tools.sh) DASK_OPERATOR_IMAGES=$$(hack/dask-images.sh) $(GO) test -count=1 -p 1 -timeout $(TEST_TIMEOUT) ./pkg/integration/multikueue ./pkg/e2e ./pkg/migration
	@hack/check-leaks.sh
	hack/test-fresh-clone.sh

## test-unit: only the tests that need no control plane, with the race detector
test-unit:
	$(GO) test -count=1 -short -race ./...
	cd $(NODEAGENT) && $(GO) test -count=1 -race ./...

## verify: generated code and CRDs are current, code is formatted and vetted, no binary is tracked
verify: lint
	hack/verify-codegen.sh
	hack/check-repo.sh

## codegen / manifests: regenerate clientset, listers, informers, deepcopy and CRDs
codegen manifests:
	hack/update-codegen.sh

lint:
	@unformatted=$$(gofmt -l $(GOFILES)); if [[ -n "$$unformatted" ]]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd $(NODEAGENT) && $(GO) vet ./...

## dev: run the operator against $KUBECONFIG, or against a local control plane when none is set
##      (Pods run as processes with real Dask; SIM=kwok for a fake node)
SIM ?= process
dev: tools
	$(GO) build -o bin/dev ./hack/dev
	DASK_OPERATOR_TOOLS_BIN=$$(hack/tools.sh) bin/dev --sim=$(SIM)

clean:
	rm -rf bin

## bench: creation, cold start, scale-up/down, memory, CPU, requests and latency on the local control plane (about 11 minutes)
bench: tools
	DASK_OPERATOR_TOOLS_BIN=$$(hack/tools.sh) $(GO) run ./hack/bench $(BENCH_FLAGS)

## faults: the fault-injection suite on the local control plane (ROUNDS=20 by default; a short run is part of make test)
ROUNDS ?= 20
faults: tools
	DASK_OPERATOR_TOOLS_BIN=$$(hack/tools.sh) $(GO) run ./hack/faults -rounds $(ROUNDS) $(FAULTS_FLAGS)
