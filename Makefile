# Set-up and checks. Everything a fresh machine needs (Go 1.26 and make) is
# built from the Go module proxy and cached under $(CACHE), outside the repo.

SHELL := /usr/bin/env bash
export GOTOOLCHAIN := local

CACHE         := $(shell scripts/cache-dir.sh)
VAULT_VERSION := 1.14.1
VAULT_BIN     := $(CACHE)/vault-$(VAULT_VERSION)/vault
export VAULT_BIN
OCB_VERSION   := 0.165.0
OCB_BIN       := $(CACHE)/ocb-$(OCB_VERSION)/builder
export OCB_BIN
BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
BENCHSTAT     := $(CACHE)/benchstat-$(BENCHSTAT_VERSION)/benchstat
GOLANGCI_VERSION := v2.15.0
GOLANGCI      := $(CACHE)/golangci-lint-$(GOLANGCI_VERSION)/golangci-lint
KUBE_VERSION  := 1.34.4
KUBE_DIR      := $(CACHE)/kube-$(KUBE_VERSION)
HELM_VERSION  := v3.22.0
HELM          := $(CACHE)/helm-$(HELM_VERSION)/helm
export HELM_BIN := $(HELM)
COLLECTOR     := bin/otelcol-vaultlightstep
export COLLECTOR_BIN := $(CURDIR)/$(COLLECTOR)
# What the collector is built from: a change to any of it rebuilds it.
COLLECTOR_SRC := builder-config.yaml go.mod go.sum $(shell git ls-files -co --exclude-standard -- '*.go' 2>/dev/null | grep -v -e '_test.go$$' -e '^tools/' -e '^build/')

# Modules with tests (tools/* only pin tools and have none).
TEST_MODULES := . deploy/helm/test

.PHONY: all test vault kube collector vaultlightstep demo bench fuzz lint generate clean

all: vaultlightstep test

## vault: build the Vault v1.14.1 dev server used by the tests and the demo (once; cached)
vault: $(VAULT_BIN)

$(VAULT_BIN): tools/vault/go.mod tools/vault/go.sum
	@scripts/build-vault.sh

## kube: build a real Kubernetes control plane (kube-apiserver and etcd, tools/kube) for the tests (once; cached)
kube: $(KUBE_DIR)/kube-apiserver

$(KUBE_DIR)/kube-apiserver: tools/kube/go.mod tools/kube/go.sum tools/kube/etcd/main.go
	@KUBE_DIR=$(KUBE_DIR) scripts/build-kube.sh

## collector: build bin/otelcol-vaultlightstep with ocb (ocb itself is installed once into the cache)
collector: $(COLLECTOR)

$(OCB_BIN):
	@echo "ocb $(OCB_VERSION): installing from the Go module proxy into $(dir $@)"
	@mkdir -p $(dir $@)
	GOBIN=$(dir $@) go install go.opentelemetry.io/collector/cmd/builder@v$(OCB_VERSION)

$(COLLECTOR): $(OCB_BIN) $(COLLECTOR_SRC)
	@echo "collector: building $@ with ocb (about 2 minutes and 600 MB of modules when cold)"
	@mkdir -p build bin
	$(OCB_BIN) --config builder-config.yaml
	cp build/otelcol-vaultlightstep/otelcol-vaultlightstep $@.new && mv -f $@.new $@  # a running copy keeps its file

## vaultlightstep: build bin/vaultlightstep, the command that rotates the Lightstep token (docs/rotation.md)
vaultlightstep:
	@mkdir -p bin
	go build -o bin/vaultlightstep ./cmd/vaultlightstep

## image: build the container image otelcol-vaultlightstep:<version> and :latest (FROM scratch, deploy/image/Dockerfile; starts dockerd if none answers)
.PHONY: image image-test
image: collector
	@scripts/build-image.sh $(COLLECTOR)

## image-test: run the image as the deployment's gateway against Vault and the stand-in (needs Docker: not part of `make test`)
image-test: vault image
	go test -tags image -count=1 -v -timeout 10m -run TestImage ./e2e/

## demo: the main job: run Vault, a Lightstep stand-in, a gateway and two agents, rotate the token, print a summary.
## It runs the `vault` on PATH in dev mode when there is one (saying which), and builds Vault v1.14.1 otherwise.
demo: collector vaultlightstep
	@if v=$$(command -v vault); then \
	  echo "demo: Vault from PATH, in dev mode: $$v ($$("$$v" version))"; \
	  VAULT_BIN="$$v" go run ./cmd/demo; \
	else \
	  echo "demo: no vault on PATH: building Vault $(VAULT_VERSION) (make vault)"; \
	  $(MAKE) --no-print-directory vault && go run ./cmd/demo; \
	fi

## bench: ours beside the Collector's own components (-count 5), Vault load, end-to-end throughput
bench: vault collector $(BENCHSTAT)
	@BENCHSTAT=$(BENCHSTAT) scripts/bench.sh

$(BENCHSTAT):
	@echo "benchstat: installing from the Go module proxy into $(dir $@)"
	@mkdir -p $(dir $@)
	GOBIN=$(dir $@) go install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)

## test: gofmt check, build what the tests need, then run every module's tests with -race
# (-v, less the === lines: the output names every test that ran, and its figures)
test: vault kube collector $(HELM)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './build/*' -not -path './.cache/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed (run gofmt -w):"; echo "$$out"; exit 1; fi
	@set -o pipefail; for m in $(TEST_MODULES); do \
	  echo "==> go test -race $$m/..."; \
	  (cd $$m && VAULTLIGHTSTEP_REQUIRE_SERVERS=1 go test -race -count=1 -v -timeout 20m ./... 2>&1 | grep -vE '^=== (RUN|PAUSE|CONT|NAME)') || exit 1; \
	done
	@echo "==> allocation tests without -race (its sync.Pool drops at random, so they skip under it)"
	@set -o pipefail; VAULTLIGHTSTEP_REQUIRE_SERVERS=1 go test -count=1 -v -run 'Allocations$$|^TestKeyOf$$' ./extension/vaultauthextension/... 2>&1 | grep -vE '^=== (RUN|PAUSE|CONT|NAME)'

## fuzz: run each fuzz target for FUZZTIME (default 30s); `make test` runs their seed corpora
FUZZTIME ?= 30s
FUZZ_TARGETS := \
  processor/vaultidentityprocessor:FuzzStampOTLPProtobuf \
  processor/vaultidentityprocessor:FuzzStampOTLPJSON \
  extension/vaultauthextension/internal/server:FuzzCredential \
  extension/vaultauthextension/internal/server:FuzzVerifyJWT \
  extension/vaultauthextension/internal/server:FuzzTokenShape \
  extension/vaultauthextension:FuzzConfig \
  internal/vaultclient:FuzzDecodeSecret
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "==> $$name ($$pkg) for $(FUZZTIME)"; \
	  go test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

## lint: gofmt check, go vet and golangci-lint (pinned in tools/lint) for every module
LINT_MODULES := . bench
lint: $(GOLANGCI)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './build/*' -not -path './.cache/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(LINT_MODULES); do \
	  echo "==> lint $$m"; \
	  (cd $$m && go vet ./... && $(GOLANGCI) run --max-issues-per-linter 0 --max-same-issues 0 ./...) || exit 1; \
	done

$(GOLANGCI): tools/lint/go.mod tools/lint/go.sum
	@echo "golangci-lint $(GOLANGCI_VERSION): building from the Go module proxy into $(dir $@) (about 1 minute)"
	@mkdir -p $(dir $@)
	cd tools/lint && go build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint

## generate: regenerate each component's internal/metadata, documentation.md and generated tests
## from its metadata.yaml with mdatagen v0.159.0 (pinned in tools/mdatagen; the v0.165.0 release is not
## served by the module proxy, and v0.159.0's output compiles against v0.165.0)
MDATAGEN_VERSION := v0.159.0
MDATAGEN := $(CACHE)/mdatagen-$(MDATAGEN_VERSION)/mdatagen
generate: $(MDATAGEN)
	cd extension/vaultauthextension && $(MDATAGEN) metadata.yaml
	cd processor/vaultidentityprocessor && $(MDATAGEN) metadata.yaml
	cd receiver/vaultauditreceiver && $(MDATAGEN) metadata.yaml

$(MDATAGEN): tools/mdatagen/go.mod tools/mdatagen/go.sum
	@echo "mdatagen $(MDATAGEN_VERSION): building from the Go module proxy into $(dir $@)"
	@mkdir -p $(dir $@)
	cd tools/mdatagen && go build -o $@ go.opentelemetry.io/collector/cmd/mdatagen

## helm: build Helm v3.22.0 (pinned in tools/helm) for the chart's tests in deploy/helm/test (once; cached)
.PHONY: helm
helm: $(HELM)

# The -X flags are those of Helm's own release builds: without them a source
# build reports version "v3.22" and assumes Kubernetes 1.20 for `helm template`.
$(HELM): tools/helm/go.mod tools/helm/go.sum
	@echo "helm $(HELM_VERSION): building from the Go module proxy into $(dir $@) (about 2 minutes cold)"
	@mkdir -p $(dir $@)
	cd tools/helm && go build -o $@ -ldflags "\
	  -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 \
	  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37" \
	  helm.sh/helm/v3/cmd/helm

## clean: remove build outputs in the repo and the cached tools
clean:
	rm -rf bin/ build/ $(CACHE)
