# mirrorctl — see README.md. `make test` needs no root; `make e2e` needs root on Debian/Ubuntu.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin/mirrorctl
DEMO     ?= /tmp/mirrorctl-demo

.PHONY: all build test e2e bench soak demo lint clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mirrorctl

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# Real engines in a private network namespace; root only. See e2e/README.md.
e2e: build
	bash e2e/run.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	bash testdata/demo/bench-process.sh $(BIN)

# 1,000 random config changes through `watch`; checks convergence and that
# goroutines and file descriptors do not grow. 15-25 s; not in `test`.
soak:
	$(GO) test -count=1 -v -tags soak -run TestSoak -timeout 20m ./watch/

# Sync the bundled Nexus3-style example into a scratch root and show the result.
demo: build
	bash testdata/demo/run.sh $(BIN) $(DEMO)

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean:
	rm -rf bin dist
