# mirrorctl — see README.md. `make test` needs no root; `make e2e` needs root on Debian/Ubuntu.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# grpcnotrace: gRPC without golang.org/x/net/trace (and html/template with it),
# which only the health probes' client would carry: a smaller binary that maps
# fewer pages at every start (make bench-node: about 2 MiB less RSS).
GOTAGS   ?= grpcnotrace
BIN      := bin/mirrorctl
DEMO     ?= /tmp/mirrorctl-demo

.PHONY: all build test test-module test-gendocs crash e2e bench bench-node soak demo lint clean package package-build package-docs lint-package image test-kubernetes test-containers cloud-init-examples fuzz fuzz-ci

# ---------------------------------------------------------------- packaging (issue 6)
# Pinned tools are built once into .tools/<name>@<version>/ (not committed).
TOOLS        ?= $(CURDIR)/.tools
NFPM_VERSION := v2.45.2
NFPM         := $(TOOLS)/nfpm@$(NFPM_VERSION)/nfpm
ARCHES       ?= amd64 arm64
# Reproducible packages and man pages: every date is the last commit's.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
# A release tag vX.Y.Z gives X.Y.Z; any other commit 0.0.0~git<commit time>.<hash>,
# which sorts before every release and in commit order (deb and rpm alike).
GIT_TAG      := $(shell git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null)
PKG_VERSION  ?= $(if $(GIT_TAG),$(patsubst v%,%,$(GIT_TAG)),0.0.0~git$(shell TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd 2>/dev/null || echo 0).$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown))
PKG_LDFLAGS  := -s -w -X main.version=$(PKG_VERSION)
# make image: an OCI layout in dist/image (and dist/mirrorctl-image.tar for
# `ctr image import`); IMAGE_PUSH=127.0.0.1:5000/mirrorctl:dev also pushes it.
IMAGE_TAG    ?= mirrorctl:$(subst ~,-,$(PKG_VERSION))
IMAGE_PUSH   ?=

all: build

build:
	CGO_ENABLED=0 $(GO) build -tags '$(GOTAGS)' -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mirrorctl

# The four parts run side by side (their output kept whole per part): the
# module's tests wait on processes and sockets as much as they compute, so
# the other modules' builds fill the idle core.
test:
	@$(MAKE) --no-print-directory -O -j4 test-module test-gendocs test-kubernetes test-containers

test-module:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

test-gendocs:
	$(GO) vet -tags gendocs ./cmd/mirrorctl
	$(GO) test -count=1 -tags gendocs -run 'TestGenDocs' ./cmd/mirrorctl

# The long loops, a minute or two each (root): a real `mirrorctl sync`
# SIGKILLed at 200 random instants (every file old or new, the next sync
# converges; its deterministic replays run in `make test`), and 200 syncs
# while an unprivileged user swaps links in their home (nothing outside
# mirrorctl's targets changes owner, mode or content).
crash:
	$(GO) test -count=1 -tags crashloop -run TestCrashDuringSync -timeout 20m ./cmd/mirrorctl/
	MIRRORCTL_TEST_RACE=1 $(GO) test -count=1 -run TestRaceUsersLinksDuringSyncs -timeout 20m ./cmd/mirrorctl/

# Real engines in a private network namespace; root only. See e2e/README.md.
e2e: build package image
	bash e2e/run.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	bash testdata/demo/bench-process.sh $(BIN)

# mirrorctl as a whole process on scratch roots holding the node's real engine
# binaries (Debian's containerd and docker.io, make e2e's crictl and pinned
# containerd 2.x from E2E_CACHE when there), specs of 20, 100 and 1,000 registries,
# every measurement interleaved with its floor (a minimal Go binary; a Go program
# writing the same files durably, one at a time; a cobra program linking only the
# libraries sync needs, alone and with each group of the others; a program
# checking a record of what the no-op read, the least a no-op that does not
# plan must do) and reported as medians and ratios,
# with strace counts and the init trace. Root and strace; 9-25 minutes on an idle 2-core VM
# (less with BENCH_FLAGS=-budget=3m), most of it the 1,000-registry writes
# (fsync-bound, so the disk decides).
# Not part of test. BENCH_FLAGS=-runs=30, -sizes=20,100, -work=DIR...
E2E_CACHE   ?= /var/cache/mirrorctl-e2e
BENCH_FLAGS ?=
e2e_pin      = $(shell sed -n 's/^$(1)=//p' e2e/versions.sh)
bench-node: build
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/bench-minimal ./tools/benchnode/floor/minimal
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/bench-durable ./tools/benchnode/floor/durable
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/bench-libraries ./tools/benchnode/floor/libraries
	for g in probes watch loader; do \
	  CGO_ENABLED=0 $(GO) build -tags "floor_$$g" -trimpath -ldflags '-s -w' -o bin/bench-libraries-$$g ./tools/benchnode/floor/libraries || exit 1; done
	CGO_ENABLED=0 $(GO) build -tags 'floor_probes floor_watch floor_loader' -trimpath -ldflags '-s -w' -o bin/bench-libraries-all ./tools/benchnode/floor/libraries
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/bench-replay ./tools/benchnode/floor/replay
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/bench-spawn ./tools/benchnode/spawn
	$(GO) build -o bin/benchnode ./tools/benchnode
	bin/benchnode -mirrorctl $(BIN) -minimal bin/bench-minimal -durable bin/bench-durable -libraries bin/bench-libraries \
	  -libraries-with 'the gRPC probes (grpc-go; CRI and containerd API types)=bin/bench-libraries-probes,watch only (Prometheus client; SSH signatures)=bin/bench-libraries-watch,doctor (containerd hosts loader)=bin/bench-libraries-loader,all three=bin/bench-libraries-all' \
	  -replay bin/bench-replay -spawn bin/bench-spawn \
	  -crictl '$(E2E_CACHE)/tools/crictl@$(call e2e_pin,CRICTL_VERSION)/crictl' \
	  -containerd2 '$(E2E_CACHE)/tools/containerd@$(call e2e_pin,CONTAINERD2_VERSION)/containerd' $(BENCH_FLAGS)

# 1,000 random config changes through `watch`; checks convergence and that
# goroutines and file descriptors do not grow. 15-25 s; not in `test`.
soak:
	$(GO) test -count=1 -v -tags soak -run TestSoak -timeout 20m ./watch/

# ---------------------------------------------------------------- fuzzing (issue 9)
# make fuzz: every Fuzz* target of the module, one after another, FUZZTIME
# each, with -parallel $(FUZZPARALLEL) (the machines are shared). make fuzz-ci
# is the short run for CI. `go test ./...` runs the seed corpora
# (<pkg>/testdata/fuzz/<target>/) without fuzzing. A run that ends in a bare
# "context deadline exceeded" with no failing input written is Go's
# coordinator race at the -fuzztime deadline (golang/go#75804, fixed in Go
# 1.27): reported, not failed. A real finding is written to the corpus
# directory and fails the run.
FUZZTIME     ?= 30s
FUZZPARALLEL ?= 1
FUZZMINTIME  ?= 5s
FUZZDIRS     := $(sort $(dir $(shell grep -rl --include='*_test.go' '^func Fuzz' spec engines watch hostfs render state plan apply cmd credentials 2>/dev/null)))

fuzz:
	@for d in $(FUZZDIRS); do \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$d*_test.go | cut -c6-); do \
	    echo "== ./$$d $$t ($(FUZZTIME))"; \
	    out=$$($(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) \
	      -parallel $(FUZZPARALLEL) ./$$d 2>&1); rc=$$?; \
	    echo "$$out" | grep '^fuzz: elapsed' | tail -n 1; \
	    if [ $$rc -ne 0 ]; then \
	      if echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
	        echo "   the -fuzztime deadline race of Go < 1.27 (golang/go#75804), no failing input: not a failure"; \
	      else echo "$$out"; exit 1; fi; \
	    fi; \
	  done; \
	done

fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=5s FUZZMINTIME=2s

# Sync the bundled Nexus3-style example into a scratch root and show the result.
demo: build
	bash testdata/demo/run.sh $(BIN) $(DEMO)

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean:
	rm -rf bin dist build

# The static binaries for every architecture in ARCHES.
package-build:
	@for a in $(ARCHES); do \
	  echo "go build linux/$$a"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -tags '$(GOTAGS)' -trimpath -ldflags '$(PKG_LDFLAGS)' -o build/$$a/mirrorctl ./cmd/mirrorctl || exit 1; \
	done

# Man pages, completions and the Debian changelog, generated into build/. gen-docs
# exists only in a build with -tags gendocs: the man-page renderer stays out of
# the shipped binary (and out of its start-up).
package-docs:
	rm -rf build/man build/completions
	$(GO) run -tags gendocs -trimpath -ldflags '$(PKG_LDFLAGS)' ./cmd/mirrorctl gen-docs --man build/man --completions build/completions
	gzip -9n build/man/*.1
	sed -e 's/@VERSION@/$(PKG_VERSION)-1/' -e 's/@GITREF@/$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)/' \
	  -e "s/@DATE@/$$(date -u -R -d @$(SOURCE_DATE_EPOCH))/" packaging/deb/changelog.in | gzip -9n >build/changelog.Debian.gz

$(NFPM):
	GOBIN=$(dir $@) GOFLAGS= GOWORK=off CGO_ENABLED=0 $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# dist/*.deb and dist/*.rpm for every architecture in ARCHES (nfpm.yaml).
package: $(NFPM) package-build package-docs
	mkdir -p dist
	rm -f dist/mirrorctl*.deb dist/mirrorctl*.rpm
	@for a in $(ARCHES); do for p in deb rpm; do \
	  GOARCH=$$a PKG_VERSION='$(PKG_VERSION)' $(NFPM) pkg --config nfpm.yaml --packager $$p --target dist/ || exit 1; \
	done; done
	@ls -l dist/*.deb dist/*.rpm

# lintian on the amd64 deb: no error and no warning (overrides carry their reasons).
lint-package:
	lintian --fail-on error,warning --display-info dist/mirrorctl_*_amd64.deb

# The container image, built without a Docker daemon by packaging/image
# (go-containerregistry, pinned in packaging/go.mod): FROM scratch plus the
# static binary and CA certificates, for every architecture in ARCHES.
image: package-build
	cd packaging && GOWORK=off GOFLAGS=-mod=readonly $(GO) run ./image \
	  $(foreach a,$(ARCHES),--binary linux/$(a)=../build/$(a)/mirrorctl) \
	  --tag '$(IMAGE_TAG)' --version '$(PKG_VERSION)' --layout ../dist/image --tar ../dist/mirrorctl-image.tar \
	  $(if $(IMAGE_PUSH),--push '$(IMAGE_PUSH)')

# The Kubernetes manifests decoded strictly into the API types (separate
# module: k8s.io/api stays out of mirrorctl's own go.mod).
test-kubernetes:
	cd packaging && GOWORK=off GOFLAGS=-mod=readonly $(GO) test -count=1 ./...

# Rewrite packaging/cloud-init/*.yaml from the generator (a test keeps them equal).
cloud-init-examples:
	$(GO) test ./cmd/mirrorctl -run TestCloudInitExamples -count=1 -update-examples

# The containers engine's files judged by containers/image itself
# (sysregistriesv2, pkg/docker/config), the library of CRI-O, Podman,
# Buildah and Skopeo: a separate module, so that it stays out of
# mirrorctl's own go.mod.
test-containers:
	cd engines/containerstest && GOWORK=off GOFLAGS=-mod=readonly $(GO) test -count=1 ./...
