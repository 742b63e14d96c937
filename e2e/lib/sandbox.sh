# shellcheck shell=bash
# The sandbox: after setup, run.sh re-executes itself with
#   unshare --net --mount --propagation private --pid --fork --mount-proc
# Network: only lo, so nothing can leave 127.0.0.1. PID namespace: when the inner stage
# ends (even by SIGKILL) the kernel ends every process left in it. Mount namespace:
# overlays on the trees below catch every write the engines and mirrorctl make, so
# mirrorctl runs with its default paths and --root /, the engines with their default
# config paths, and the host's files never change.

# Trees overlaid for the whole run (writes land in $E2E_WORK/overlay/...).
OVERLAID=(/etc /var/lib /run /opt /root)
# Per-scenario state: each is a fresh empty directory (a bind mount from ext4 scratch,
# which containerd's overlayfs snapshotter and docker's overlay2 need) in every scenario.
STATE_DIRS=(
  /etc/containerd /etc/docker /etc/rancher /etc/mirrorctl
  /var/lib/containerd /var/lib/docker /var/lib/mirrorctl /var/lib/rancher
  /run/containerd /run/docker /run/nri /opt/containerd /root/.docker
  /root/.config/containers /run/containers
)
# Per-scenario copies of the host's own tree (Debian's /etc/containers, which podman needs):
# every scenario starts from the host's files, and what one scenario's sync wrote there (every
# sync manages the containers engine where podman is installed) is gone in the next.
COPIED_DIRS=(/etc/containers)
# Single files removed at the start of every scenario.
STATE_FILES=(/etc/crictl.yaml /run/docker.pid /run/docker.sock)
# Engine binaries that use_containerd (containerd 1.7 and 2.x) and use_dockerd (29) replace
# with file bind mounts, so mirrorctl detects the version the way it does on a node.
SWAPPED_BINS=(/usr/bin/containerd /usr/bin/ctr /usr/bin/containerd-shim-runc-v2)
SWAPPED_DOCKERD=/usr/sbin/dockerd

# What the host must still look like after the run (outer stage, before and after).
host_snapshot() {
  local p
  for p in "${STATE_DIRS[@]}" "${COPIED_DIRS[@]}" "${STATE_FILES[@]}" "${SWAPPED_BINS[@]}" "$SWAPPED_DOCKERD" /etc/containerd/config.toml; do
    [ -e "$p" ] || [ -L "$p" ] || { echo "absent $p"; continue; }
    find "$p" -xdev -printf '%p %y %m %U %s %T@\n' 2>/dev/null
  done | sort
  echo "--- mounts on the trees the sandbox overlays"
  findmnt -rn -o TARGET,SOURCE,FSTYPE | grep -E "^(/etc|/var/lib|/run|/opt|/root|/usr/bin|$E2E_WORK)(/| )" | sort
}

sandbox_init() {
  ip link set lo up || return 1
  local d name
  for d in "${OVERLAID[@]}"; do
    name=${d//\//_}
    mkdir -p "$E2E_WORK/overlay/$name/upper" "$E2E_WORK/overlay/$name/work"
    mount -t overlay "e2e-overlay$name" \
      -o "lowerdir=$d,upperdir=$E2E_WORK/overlay/$name/upper,workdir=$E2E_WORK/overlay/$name/work" "$d" || return 1
  done
  for d in "${COPIED_DIRS[@]}"; do
    mkdir -p "$E2E_WORK/pristine$d" && { [ ! -d "$d" ] || cp -a "$d/." "$E2E_WORK/pristine$d/"; } || return 1
  done
  # dockerd and a nspawn'ed dockerd want IPv4 forwarding on; this is the private netns.
  sysctl -qw net.ipv4.ip_forward=1
}

# fresh_state LABEL: every STATE_DIR becomes a new empty directory under
# $E2E_WORK/state/LABEL (kept for inspection), every STATE_FILE is removed.
fresh_state() {
  local base=$E2E_WORK/state/$1 d f
  for d in "${STATE_DIRS[@]}"; do
    unmount_all "$d"
    mkdir -p "$base$d" "$d" && mount --bind "$base$d" "$d" || return 1
  done
  for d in "${COPIED_DIRS[@]}"; do
    unmount_all "$d"
    mkdir -p "$base$d" "$d" && cp -a "$E2E_WORK/pristine$d/." "$base$d/" && mount --bind "$base$d" "$d" || return 1
  done
  for f in "${STATE_FILES[@]}"; do rm -f "$f"; done
  STATE_ROOT=$base
}

# use_containerd LABEL (1.6, 1.7, 2.0 … 2.4, see CTRD_LABELS): which containerd
# /usr/bin/{containerd,ctr,containerd-shim-runc-v2} are: Debian's for 1.6, else the built
# ones, so mirrorctl detects the version the usual way and the daemon runs from its usual path.
use_containerd() {
  local b dir=
  for b in "${SWAPPED_BINS[@]}"; do unmount_all "$b"; done
  if [ "$1" != 1.6 ]; then
    dir=$(ctrd_label_dir "$1") || { echo "no containerd version for label $1"; return 1; }
    tool_cached "$dir" "${CONTAINERD_CMDS[@]}" || { echo "containerd $1 was not built ($dir)"; return 1; }
    for b in "${SWAPPED_BINS[@]}"; do mount --bind "$dir/${b##*/}" "$b" || return 1; done
  fi
  CTRD_LABEL=$1
}

# use_dockerd 20|29: /usr/sbin/dockerd is Debian's 20.10 or the built 29.
use_dockerd() {
  unmount_all "$SWAPPED_DOCKERD"
  if [ "$1" != 20 ]; then
    tool_cached "$(dockerd_dir)" dockerd || { echo "dockerd $DOCKERD_RELEASE was not built"; return 1; }
    mount --bind "$(dockerd_dir)/dockerd" "$SWAPPED_DOCKERD" || return 1
  fi
  DOCKERD_LABEL=$1
}

# is_mounted PATH: PATH (a directory or a file) is itself a mount point.
is_mounted() { findmnt -rn -M "$1" >/dev/null 2>&1; }

# unmount_all PATH: undo every mount stacked on PATH (bounded; lazy as a last resort).
unmount_all() {
  local i
  for ((i = 0; i < 8; i++)); do
    is_mounted "$1" || return 0
    umount "$1" 2>/dev/null || umount -l "$1"
  done
}
