# shellcheck shell=bash
# Setup stage (host network, before the private namespaces): Debian packages, Go-built
# tools, k3scheck and the nspawn node's rootfs. Everything is idempotent and cached
# under $E2E_CACHE, keyed by version, so a second run on the same machine only checks.

# ------------------------------------------------------------------ apt
apt_lists_fresh() {  # true if apt's lists were updated within the last 24 h
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Release' -mmin -1440 2>/dev/null | head -n 1)" ]
}

apt_ensure() {
  local missing=() p installed
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${E2E_APT_PACKAGES[@]}" 2>/dev/null |
    awk '$2 == "installed" { print $1 }')
  for p in "${E2E_APT_PACKAGES[@]}"; do grep -qx "$p" <<<"$installed" || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then
    say "apt: all ${#E2E_APT_PACKAGES[@]} packages already installed"
    return 0
  fi
  say "apt: installing ${missing[*]}"
  local log=$E2E_LOGS/apt.log
  if ! apt_lists_fresh; then
    timed "apt-get update (lists older than 24 h)" logged "$log" apt-get update -q || { show_tail "$log"; return 1; }
  fi
  local opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  # Installing containerd and docker.io must not start them on the host: where no
  # policy-rc.d forbids it already, put one in place for the duration of the install.
  local policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# mirrorctl e2e: no service starts during its apt-get install\nexit 101\n' >/usr/sbin/policy-rc.d &&
      chmod 0755 /usr/sbin/policy-rc.d && policy=/usr/sbin/policy-rc.d
  fi
  apt_install "${opts[@]}" "${missing[@]}"
  local rc=$?
  [ -z "$policy" ] || rm -f "$policy"
  return $rc
}

apt_install() {
  local log=$E2E_LOGS/apt.log
  if ! timed "apt-get install" logged "$log" env DEBIAN_FRONTEND=noninteractive apt-get install "$@"; then
    # Lists can be fresh by date and still name files the mirror no longer has.
    timed "apt-get update (retry)" logged "$log" apt-get update -q &&
      timed "apt-get install (retry)" logged "$log" env DEBIAN_FRONTEND=noninteractive apt-get install "$@" ||
      { show_tail "$log"; return 1; }
  fi
}

# ------------------------------------------------------------------ Go tools
# go_tool NAME VERSION "ENV=V ..." "GO INSTALL FLAGS" PKG...: build PKG@VERSION (all from one
# module) into $E2E_CACHE/tools/NAME@VERSION/ unless every binary is already there.
# Sets TOOLDIR_<NAME> to the directory.
go_tool() {
  local name=$1 version=$2 envs=$3 flags=$4; shift 4
  local dir=$E2E_CACHE/tools/$name@$version p ok=1
  for p in "$@"; do [ -x "$dir/${p##*/}" ] || ok=0; done
  printf -v "TOOLDIR_${name//-/_}" '%s' "$dir"
  if [ $ok = 1 ]; then
    say "tool: $name@$version cached"
    return 0
  fi
  local tmp=$E2E_CACHE/tools/.build-$name-$$ args=() log=$E2E_LOGS/go-install-$name.log
  rm -rf "$tmp" && mkdir -p "$tmp"
  for p in "$@"; do args+=("$p@$version"); done
  # shellcheck disable=SC2086 # $envs and $flags are word lists by design
  if ! timed "go install $name@$version" logged "$log" env GOBIN="$tmp" GOFLAGS= GOWORK=off $envs \
      go install $flags "${args[@]}"; then
    show_tail "$log"; rm -rf "$tmp"; return 1
  fi
  rm -rf "$dir" && mv "$tmp" "$dir"
}

go_tools_ensure() {
  go_tool crane "$CRANE_VERSION" "CGO_ENABLED=0" "" "${CRANE_PKGS[@]}" &&
    go_tool crictl "$CRICTL_VERSION" "CGO_ENABLED=0" "" "${CRICTL_PKGS[@]}" &&
    go_tool containerd "$CONTAINERD2_VERSION" "CGO_ENABLED=1" "-tags=${CONTAINERD2_TAGS// /,}" "${CONTAINERD2_PKGS[@]}"
}

# k3scheck: the separate Go module under e2e/k3scheck, cached by a hash of its sources.
k3scheck_ensure() {
  local src=$E2E_DIR/k3scheck key
  key=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go <(go version) | sha256sum | cut -c1-12)
  K3SCHECK=$E2E_CACHE/tools/k3scheck-$key/k3scheck
  if [ -x "$K3SCHECK" ]; then say "tool: k3scheck cached ($key)"; return 0; fi
  local d
  for d in "$E2E_CACHE"/tools/k3scheck-*; do [ -e "$d" ] && rm -rf "$d"; done
  mkdir -p "${K3SCHECK%/*}"
  ( cd "$src" && timed "go build k3scheck" logged "$E2E_LOGS/k3scheck-build.log" \
      env GOFLAGS=-mod=readonly GOWORK=off CGO_ENABLED=0 go build -o "$K3SCHECK.tmp" . ) &&
    mv "$K3SCHECK.tmp" "$K3SCHECK" || { show_tail "$E2E_LOGS/k3scheck-build.log"; return 1; }
}

# ------------------------------------------------------------------ node rootfs
# The Debian mirror apt already uses for $NODE_SUITE (deb822 .sources first, then .list lines).
debian_mirror() {
  local f m
  m=$(for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$NODE_SUITE" 'BEGIN { RS = ""; FS = "\n" }
      { types = ""; uris = ""; suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = $i
          if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) suites = " " $i " "
          if ($i ~ /^Enabled:[ \t]*no/) enabled = "no"
        }
        if (enabled == "yes" && types ~ /[ \t]deb([ \t]|$)/ && suites ~ "[ \t]" suite "[ \t]") { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f"
  done)
  [ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -E 's/\[[^]]*\]//' | awk -v suite="$NODE_SUITE" '$1 == "deb" && $3 == suite { print $2 }')
  m=${m%%$'\n'*}
  [ -n "$m" ] && echo "$m"
}

rootfs_key() { printf '%s %s %s recipe=1\n' "$NODE_SUITE" "$NODE_VARIANT" "$NODE_PACKAGES" | sha256sum | cut -c1-12; }

# unmount anything left mounted under DIR (debootstrap mounts proc/sys in its target)
umount_under() {
  local m
  findmnt -rn -o TARGET | grep -E "^$1(/|$)" | sort -r | while read -r m; do umount -l "$m"; done
}

rootfs_build() {  # debootstrap into a temp dir, then rename: a half-built rootfs is never cached
  local tmp=$1 final=$2 mirror
  mirror=$(debian_mirror) || { say "no Debian mirror for $NODE_SUITE in /etc/apt/sources.list(.d)"; return 1; }
  umount_under "$tmp"; rm -rf --one-file-system "$tmp"
  # its own process group, so a stop reaches the dpkg runs inside the target as well
  setsid debootstrap --variant="$NODE_VARIANT" --include="$NODE_PACKAGES" "$NODE_SUITE" "$tmp" "$mirror" &
  local dpid=$! rc=0
  trap 'kill -TERM -- "-$dpid" 2>/dev/null; wait "$dpid"; umount_under "$tmp"; exit 143' TERM INT
  wait "$dpid" || rc=$?
  trap - TERM INT
  umount_under "$tmp"
  [ $rc -eq 0 ] || return 1
  echo "debootstrap finished in $(secs_since "$ROOTFS_T0")"
  touch "$tmp/.mirrorctl-e2e-rootfs" && mv "$tmp" "$final"
}

# rootfs_start: sets NODE_ROOTFS; if not cached, starts the build in the background
# (ROOTFS_PID) so it overlaps with the Go builds. rootfs_wait collects it.
ROOTFS_PID=
rootfs_start() {
  local key d
  key=$(rootfs_key)
  NODE_ROOTFS=$E2E_CACHE/rootfs/$NODE_SUITE-$key
  if [ -f "$NODE_ROOTFS/.mirrorctl-e2e-rootfs" ]; then say "rootfs: $NODE_ROOTFS cached"; return 0; fi
  for d in "$E2E_CACHE"/rootfs/*; do  # other keys are stale: drop them
    [ -e "$d" ] && [ "$d" != "$NODE_ROOTFS" ] && { umount_under "$d"; rm -rf --one-file-system "$d"; }
  done
  mkdir -p "$E2E_CACHE/rootfs"
  say "rootfs: building $NODE_ROOTFS in the background (debootstrap $NODE_SUITE, log $E2E_LOGS/debootstrap.log)"
  ROOTFS_T0=$(now_ms)
  spawn debootstrap "$E2E_LOGS/debootstrap.log" rootfs_build "$E2E_CACHE/rootfs/.build-$key" "$NODE_ROOTFS"
  ROOTFS_PID=$LAST_PID
}

rootfs_wait() {
  [ -n "$ROOTFS_PID" ] || return 0
  local rc=0
  wait "$ROOTFS_PID" || rc=$?
  printf 'time  %-48s %8s%s\n' "debootstrap $NODE_SUITE rootfs (in the background)" \
    "$(grep -o 'debootstrap finished in [0-9.]*s' "$E2E_LOGS/debootstrap.log" | grep -o '[0-9.]*s$')" \
    "$([ $rc -eq 0 ] || echo "  (exit $rc after $(secs_since "$ROOTFS_T0"))")"
  [ $rc -eq 0 ] || { show_tail "$E2E_LOGS/debootstrap.log"; return 1; }
  say "rootfs: $(du -sh "$NODE_ROOTFS" | cut -f1) at $NODE_ROOTFS"
}
