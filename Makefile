# Loadstone. `make lab` and `make test` install what they need themselves (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

export LOADSTONE_CACHE ?= $(HOME)/.cache/loadstone
GO ?= go
BIN := $(CURDIR)/bin
# Packages whose tests need one whole lab at a time run separately, one package at a time.
E2E_PKGS = ./e2e/...
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/e2e/')
K8S_BIN = $(shell hack/k8s-binaries.sh | tail -n 1)
TEST_FLAGS ?=
E2E_TIMEOUT ?= 20m

.PHONY: help
help: ## Show the targets.
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install the Debian packages the tests and the lab use (only what is missing).
	@hack/deps.sh

.PHONY: k8s-binaries
k8s-binaries: ## Build etcd and the Kubernetes binaries from source (cached; ~10 min the first time).
	@hack/k8s-binaries.sh >/dev/null

.PHONY: coredns
coredns: ## Build CoreDNS (the lab's cluster DNS) from source (cached; ~3 min the first time).
	@hack/coredns.sh >/dev/null

# Version and commit stamped into the binaries (logged at start, printed by --version).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LOGGING_PKG := github.com/loadstone-lb/loadstone/internal/logging

.PHONY: build
build: ## Build static controller and speaker binaries into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X $(LOGGING_PKG).version=$(VERSION) -X $(LOGGING_PKG).commit=$(COMMIT)" -o $(BIN)/ ./controller ./speaker

.PHONY: generate
generate: ## Regenerate deepcopy code, CRD manifests, the chart's CRDs and docs/reference.md.
	hack/generate.sh
	rm -f charts/loadstone/crds/*.yaml && cp config/crd/bases/*.yaml charts/loadstone/crds/
	$(GO) run ./hack/crdref config/crd/bases docs/reference.md

.PHONY: test
test: deps k8s-binaries coredns ## Install what is missing, then run unit, envtest, kernel and e2e tests.
	KUBEBUILDER_ASSETS="$(K8S_BIN)" LOADSTONE_HELM="$$(hack/tools.sh helm)" LOADSTONE_PROMTOOL="$$(hack/tools.sh promtool)" $(GO) test -count=1 $(TEST_FLAGS) $(UNIT_PKGS)
	KUBEBUILDER_ASSETS="$(K8S_BIN)" $(GO) test -count=1 -p 1 -timeout $(E2E_TIMEOUT) $(TEST_FLAGS) $(E2E_PKGS)

.PHONY: test-short
test-short: ## Unit tests only (no API server, no kernel, no lab).
	$(GO) test -short $(UNIT_PKGS)

FUZZTIME ?= 30s

# go test takes one -fuzz target per run: list them all (with -short, so that no TestMain
# brings a lab up), then fuzz each for FUZZTIME.
.PHONY: fuzz
fuzz: ## Run every fuzz target in the module for FUZZTIME each (default 30s).
	@set -eo pipefail; \
	targets=$$($(GO) test -short -list '^Fuzz' ./... | awk '/^Fuzz/ { n[++c] = $$1; next } /^ok / { for (i = 1; i <= c; i++) print $$2 "," n[i]; c = 0 }'); \
	[ -n "$$targets" ] || { echo "make fuzz: no fuzz targets found"; exit 1; }; \
	for t in $$targets; do \
		echo "fuzz: $${t#*,} in $${t%,*} for $(FUZZTIME)"; \
		$(GO) test -short -run '^$$' -fuzz "^$${t#*,}$$" -fuzztime $(FUZZTIME) "$${t%,*}"; \
	done

.PHONY: lint
lint: ## gofmt, go vet and golangci-lint (pinned).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$$(hack/tools.sh golangci-lint) run ./...

.PHONY: bench
bench: deps k8s-binaries coredns ## Run the benchmarks and write bench/results.md.
	KUBEBUILDER_ASSETS="$(K8S_BIN)" hack/bench.sh

.PHONY: lab
lab: deps k8s-binaries coredns ## Bring up the lab cluster with Loadstone and walk through ClusterIP -> NodePort -> LoadBalancer.
	$(GO) run ./e2e/cmd/lab -k8s-bin "$(K8S_BIN)" walkthrough

.PHONY: lab-up
lab-up: deps k8s-binaries coredns ## Bring up the lab cluster with Loadstone, without the walkthrough.
	$(GO) run ./e2e/cmd/lab -k8s-bin "$(K8S_BIN)" up

.PHONY: lab-down
lab-down: ## Tear the lab down (processes by PID, namespaces by name).
	$(GO) run ./e2e/cmd/lab down
