# Set-up and checks. Everything a fresh machine needs (Go 1.26 and make) is
# built from the Go module proxy and cached under $(CACHE), outside the repo.

SHELL := /usr/bin/env bash
export GOTOOLCHAIN := local

CACHE         := $(shell scripts/cache-dir.sh)
VAULT_VERSION := 1.14.1
VAULT_BIN     := $(CACHE)/vault-$(VAULT_VERSION)/vault
export VAULT_BIN

# Modules with tests (tools/* only pin tools and have none).
TEST_MODULES := .

.PHONY: all test vault lint clean

all: test

## vault: build the Vault v1.14.1 dev server used by the tests and the demo (once; cached)
vault: $(VAULT_BIN)

$(VAULT_BIN): tools/vault/go.mod tools/vault/go.sum
	@scripts/build-vault.sh

## test: build what the tests need, then run every module's tests with -race
test: vault
	@for m in $(TEST_MODULES); do \
	  echo "==> go test -race $$m/..."; \
	  (cd $$m && go test -race -count=1 ./...) || exit 1; \
	done

## lint: gofmt check and go vet for every module
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(TEST_MODULES); do (cd $$m && go vet ./...) || exit 1; done

## clean: remove build outputs in the repo and the cached tools
clean:
	rm -rf bin/ $(CACHE)
