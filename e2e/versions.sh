# shellcheck shell=bash
# Everything e2e/run.sh installs, pinned in one place. Bump a version here and the
# next run rebuilds that tool (the cache directory is keyed by name@version).
# k3scheck's library (github.com/rancher/wharfie) is pinned by e2e/k3scheck/go.mod.

# Debian packages for the host (installed only when missing).
E2E_APT_PACKAGES=(
  containerd runc docker.io docker-registry apache2-utils busybox-static
  systemd-container debootstrap procps iproute2 util-linux
  curl jq gcc libc6-dev ca-certificates debian-archive-keyring
  lintian rpm cloud-init openssl python3
  podman skopeo
)

# Go-built tools, each cached in $E2E_CACHE/tools/NAME@VERSION/ and built when missing,
# at most E2E_BUILD_JOBS at a time (lib/setup.sh).
E2E_BUILD_JOBS=${E2E_BUILD_JOBS:-2}
# Built with `go install PACKAGE@VERSION` in module mode.
CRICTL_VERSION=v1.37.0
CRANE_VERSION=v0.22.1
CRICTL_PKGS=(sigs.k8s.io/cri-tools/cmd/crictl)
CRANE_PKGS=(github.com/google/go-containerregistry/cmd/crane)

# containerd: the version matrix (issue 12). 1.6 is Debian's package; every other minor is
# built from its module (1.x: github.com/containerd/containerd, 2.x: .../v2) with the
# module itself as the main module (`go build` in its directory of the module cache), as
# its Makefile does: the go.mod of 1.7 and 2.0 has exclude directives, which
# `go install pkg@version` refuses. A scenario's label is the minor (containerd-2.1/...).
CONTAINERD_VERSIONS=(v1.7.35 v2.0.14 v2.1.9 v2.2.9 v2.3.7 v2.4.2)
CONTAINERD_TAGS="no_btrfs no_devmapper no_zfs"
CONTAINERD_CMDS=(containerd ctr containerd-shim-runc-v2)
# The 2.x that the node scenarios (node/unhealthy) and dockerd 29 (its external containerd) use.
CONTAINERD2_VERSION=v2.4.2

# dockerd 29.8 from the moby module (`go install`, CGO off). Without -X it reports its
# version as "library-import"; mirrorctl reads `dockerd --version`, so the release is set.
DOCKERD_MODULE_VERSION=v2.0.0-beta.24
DOCKERD_RELEASE=29.8.0
DOCKERD_PKGS=(github.com/moby/moby/v2/cmd/dockerd)
DOCKERD_LDFLAGS="-X github.com/moby/moby/v2/dockerversion.Version=$DOCKERD_RELEASE -X github.com/moby/moby/v2/dockerversion.GitCommit=moby-$DOCKERD_MODULE_VERSION"

# distribution with `auth: token` (issue 14; e2e/lib/tokenauth.sh), `go install`ed like crane.
DISTRIBUTION_VERSION=v3.1.2
DISTRIBUTION_PKGS=(github.com/distribution/distribution/v3/cmd/registry)

# The systemd-nspawn node: a debootstrap'ed rootfs, cached by a key made of these values.
NODE_SUITE=bookworm
NODE_VARIANT=minbase
NODE_PACKAGES=systemd,systemd-sysv,dbus,procps,ca-certificates,containerd,runc,docker.io
