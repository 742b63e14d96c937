# shellcheck shell=bash
# A node with a real systemd: the cached debootstrap rootfs booted with systemd-nspawn
# inside the sandbox (it shares the private netns, so it reaches the registries on
# 127.0.0.1 and nothing else). --volatile=overlay keeps the cached rootfs pristine;
# /var/lib/containerd and /var/lib/docker are bind-mounted from ext4 because overlayfs
# and overlay2 cannot use an overlayfs upper dir. /etc/mirrorctl and /etc/docker are
# bind-mounted from $NODE_DIR so the harness can seed and read them from outside.
#
# Reusable for the activation scenarios (restart / reload / rollback through systemd):
#   node_boot LABEL [nspawn args...]      boot; sets NODE_DIR, NODE_PID1, NODE_NSPAWN_PID
#   node_dir LABEL                        the node's $NODE_DIR; a directory etc-containerd/ made
#                                         there before node_boot becomes the node's /etc/containerd
#                                         (seeded by the harness, readable from outside)
#   node_sh CMD...                        run CMD inside the node (all its namespaces)
#   node_prop UNIT PROP                   systemctl show -p PROP --value UNIT (MainPID, ActiveState, NRestarts...)
#   node_wait_active UNIT [TIMEOUT_S]     wait until UNIT is active
#   node_wait_socket [TIMEOUT_S]          wait until containerd answers on its socket
#   node_cri ARGS...                      crictl inside the node (its /etc/crictl.yaml)
#   node_crictl ARGS...                   crictl inside the node, containerd's socket given by flags
#   node_mctl ARGS...                     mirrorctl inside the node (default paths, --root /)
#   node_starts UNIT / node_reloads UNIT  how many times the journal says UNIT was started / reloaded
#   node_docker_mirrors                   dockerd's registry mirrors (docker info), one JSON line
#   node_plugins_ok [PLUGIN...]           containerd's CRI plugins report ok (ctr plugins ls)
#   node_journal [UNIT...]                journal of the units into $NODE_DIR/journal.log
#   node_write PATH [MODE] <DATA          write a file inside the node (e.g. a unit drop-in or
#                                         a containerd imports file, to arrange a fault)
#   node_bus                              the node's system bus address, for D-Bus from the host
#   node_shutdown                         SIGTERM to nspawn (a clean poweroff), by PID

NODE_NAME=mirrorctl-e2e-node
NODE_PID1=
NODE_NSPAWN_PID=

node_sh() { timeout "${E2E_NODE_TIMEOUT:-180}" nsenter -t "$NODE_PID1" -a "$@"; }
node_prop() { node_sh systemctl show -p "$2" --value "$1"; }
node_wait_active() { wait_until "${2:-30}" node_sh systemctl is-active -q "$1"; }
node_wait_socket() { wait_until "${1:-30}" node_sh ctr version; }
node_cri() { node_sh /usr/local/bin/crictl "$@"; }
node_crictl() {
  node_sh /usr/local/bin/crictl -r unix:///run/containerd/containerd.sock \
    -i unix:///run/containerd/containerd.sock -t 30s "$@"
}
node_mctl() { node_sh /usr/local/bin/mirrorctl "$@"; }
node_dir() { echo "$E2E_WORK/node/$1"; }

# node_starts UNIT / node_reloads UNIT: systemd's "Started <unit> …" / "Reloaded <unit> …" lines.
node_journal_count() {
  node_sh journalctl --no-pager -o cat -u "$1" 2>/dev/null | grep -c "^$2 $1" || true
}
node_starts() { node_journal_count "$1" Started; }
node_reloads() { node_journal_count "$1" Reloaded; }
# node_journal_wait UNIT Started|Reloaded N: wait (bounded) until the journal has N such lines
# (journald stores what PID 1 logs a moment later: read counts only once it has caught up).
node_journal_wait() {
  local i
  for ((i = 0; i < 50; i++)); do
    [ "$(node_journal_count "$1" "$2")" -ge "$3" ] && return 0
    sleep 0.1
  done
  return 1
}

node_docker_mirrors() { node_sh docker info --format '{{json .RegistryConfig.Mirrors}}' 2>/dev/null; }

node_write() {
  local p=/proc/$NODE_PID1/root$1
  mkdir -p "${p%/*}" && cat >"$p" && chmod "${2:-0644}" "$p"
}
node_bus() { echo "unix:path=/proc/$NODE_PID1/root/run/dbus/system_bus_socket"; }

node_journal() {
  local units=() u
  [ $# -gt 0 ] || set -- containerd.service docker.service
  for u in "$@"; do units+=(-u "$u"); done
  node_sh journalctl --no-pager -o short-monotonic "${units[@]}" >"$NODE_DIR/journal.log" 2>&1
}

# node_boot LABEL [extra systemd-nspawn args...]: node_boot_once, and once more if the only
# trouble was units that systemd could not put into their cgroup (status=219/CGROUP: seen on
# a cgroup v1 host when another nspawn node, of another e2e run on the same machine, boots at
# the same time). Any other failure to boot is reported as it is.
node_boot() {
  node_boot_once "$@" && return 0
  local label=$1
  grep -q 'status=219/CGROUP' "$E2E_WORK/node/$label/nspawn.log" 2>/dev/null || return 1
  echo "node $label: units failed with status=219/CGROUP (another nspawn on this machine?): booting it once more"
  node_shutdown
  mv "$E2E_WORK/node/$label/nspawn.log" "$E2E_WORK/node/$label/nspawn-1.log"
  node_boot_once "$@"
}

node_boot_once() {
  local label=$1; shift
  NODE_DIR=$E2E_WORK/node/$label
  if [ -z "${NODE_ROOTFS:-}" ] || [ ! -f "$NODE_ROOTFS/.mirrorctl-e2e-rootfs" ]; then
    echo "no node rootfs (setup could not build it)"; return 1
  fi
  mkdir -p "$NODE_DIR"/{var-containerd,var-docker,etc-docker,etc-mirrorctl} || return 1
  local binds=()
  [ -d "$NODE_DIR/etc-containerd" ] && binds+=("--bind=$NODE_DIR/etc-containerd:/etc/containerd")
  # dockerd cannot create a bridge or iptables rules in the shared netns
  [ -f "$NODE_DIR/etc-docker/daemon.json" ] ||
    printf '{\n  "iptables": false,\n  "ip6tables": false,\n  "bridge": "none"\n}\n' >"$NODE_DIR/etc-docker/daemon.json"
  # Test restarts come fast: no start limits (Debian's docker.service allows 3 per 60 s).
  local u
  for u in containerd.service docker.service docker.socket; do
    mkdir -p "$NODE_DIR/dropins/$u.d"
    printf '[Unit]\nStartLimitIntervalSec=0\n' >"$NODE_DIR/dropins/$u.d/50-e2e-no-start-limit.conf"
    binds+=("--bind-ro=$NODE_DIR/dropins/$u.d:/etc/systemd/system/$u.d")
  done
  [ -x "$MIRRORCTL" ] && binds+=("--bind-ro=$MIRRORCTL:/usr/local/bin/mirrorctl")
  binds+=("--bind-ro=$TOOLDIR_crictl/crictl:/usr/local/bin/crictl")
  rm -rf "/run/systemd/nspawn/propagate/$NODE_NAME"
  local t; t=$(now_ms)
  spawn "nspawn $label" "$NODE_DIR/nspawn.log" systemd-nspawn -D "$NODE_ROOTFS" -M "$NODE_NAME" -b \
    --volatile=overlay --register=no --keep-unit --console=passive \
    "--bind=$NODE_DIR/var-containerd:/var/lib/containerd" "--bind=$NODE_DIR/var-docker:/var/lib/docker" \
    "--bind=$NODE_DIR/etc-docker:/etc/docker" "--bind=$NODE_DIR/etc-mirrorctl:/etc/mirrorctl" \
    "${binds[@]}" "$@" systemd.mask=console-getty.service systemd.show_status=false
  NODE_NSPAWN_PID=$LAST_PID
  NODE_PID1=
  local i st=
  # PID 1 of the node is nspawn's child named systemd (with --volatile=overlay nspawn forks
  # a short-lived helper first, so "the first child" is not it).
  for ((i = 0; i < 300; i++)); do
    NODE_PID1=$(pgrep -P "$NODE_NSPAWN_PID" -x systemd | head -n 1)
    [ -n "$NODE_PID1" ] && break
    alive "$NODE_NSPAWN_PID" || break
    sleep 0.1
  done
  [ -n "$NODE_PID1" ] || { echo "no systemd under nspawn pid $NODE_NSPAWN_PID"; tail -n 20 "$NODE_DIR/nspawn.log"; return 1; }
  for ((i = 0; i < 600; i++)); do
    st=$(node_sh systemctl is-system-running 2>/dev/null)
    case $st in running | degraded) break ;; esac
    sleep 0.1
  done
  echo "node $label: systemd '$st' after $(secs_since "$t") (nspawn pid $NODE_NSPAWN_PID, node PID 1 = pid $NODE_PID1)"
  if [ "$st" != running ]; then node_sh systemctl --failed --no-pager 2>&1; return 1; fi
}

node_shutdown() {
  [ -n "$NODE_NSPAWN_PID" ] || return 0
  # keep the node's engine files for the failure report (the overlay dies with the node)
  if [ -n "$NODE_PID1" ] && [ -d "/proc/$NODE_PID1/root/etc" ]; then
    node_journal >/dev/null 2>&1
    mkdir -p "$NODE_DIR/etc-snapshot"
    cp -a "/proc/$NODE_PID1/root/etc/containerd" "/proc/$NODE_PID1/root/etc/crictl.yaml" "$NODE_DIR/etc-snapshot/" 2>/dev/null
  fi
  stop_pid "$NODE_NSPAWN_PID" TERM 30
  rm -rf "/run/systemd/nspawn/propagate/$NODE_NAME"
  NODE_NSPAWN_PID='' NODE_PID1=''
}

# node_cri_pull_via LOG NS REF: like cri_pull_via, with crictl inside the node.
node_cri_pull_via() { CRI_CMD=node_cri cri_pull_via "$@"; }

# node_plugins_ok [PLUGIN...]: these plugins of the node's containerd report ok (default: the
# CRI plugin; a 2.x node also needs io.containerd.cri.v1.images).
node_plugins_ok() {
  local out st id rc=0
  [ $# -gt 0 ] || set -- io.containerd.grpc.v1.cri
  out=$(node_sh ctr plugins ls 2>&1) || { echo "$out"; return 1; }
  for id in "$@"; do
    st=$(awk -v id="$id" '$1 "." $2 == id { print $NF }' <<<"$out")
    echo "$id: ${st:-missing}"
    [ "$st" = ok ] || rc=1
  done
  return $rc
}
