# shellcheck shell=bash
# Everything e2e/run.sh installs, pinned in one place. Bump a version here and the
# next run rebuilds that tool (the cache directory is keyed by name@version).
# k3scheck's library (github.com/rancher/wharfie) is pinned by e2e/k3scheck/go.mod.

# Debian packages for the host (installed only when missing).
E2E_APT_PACKAGES=(
  containerd runc docker.io docker-registry apache2-utils busybox-static
  systemd-container debootstrap procps iproute2 util-linux
  curl jq gcc libc6-dev ca-certificates debian-archive-keyring
  lintian rpm cloud-init openssl
  podman skopeo
)

# Go-built tools: NAME=PACKAGE[,PACKAGE...]@VERSION, built with `go install` in module mode.
CRICTL_VERSION=v1.37.0
CRANE_VERSION=v0.22.1
CONTAINERD2_VERSION=v2.4.2
CONTAINERD2_TAGS="no_btrfs no_devmapper no_zfs"
CRICTL_PKGS=(sigs.k8s.io/cri-tools/cmd/crictl)
CRANE_PKGS=(github.com/google/go-containerregistry/cmd/crane)
# distribution with `auth: token` (issue 14; e2e/lib/tokenauth.sh)
DISTRIBUTION_VERSION=v3.1.2
DISTRIBUTION_PKGS=(github.com/distribution/distribution/v3/cmd/registry)
CONTAINERD2_PKGS=(
  github.com/containerd/containerd/v2/cmd/containerd
  github.com/containerd/containerd/v2/cmd/ctr
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
)

# The systemd-nspawn node: a debootstrap'ed rootfs, cached by a key made of these values.
NODE_SUITE=bookworm
NODE_VARIANT=minbase
NODE_PACKAGES=systemd,systemd-sysv,dbus,procps,ca-certificates,containerd,runc,docker.io
