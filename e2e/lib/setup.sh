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
# Every tool lives in $E2E_CACHE/tools/NAME@VERSION/ (tool_dir). A build goes into a
# temporary directory that is renamed only once every binary is there, so a half-built
# tool is never cached. go_tools_ensure builds what is missing, E2E_BUILD_JOBS at a time.
tool_dir() { echo "$E2E_CACHE/tools/$1@$2"; }

# ctrd_dir VERSION: the directory of a built containerd (VERSION as in CONTAINERD_VERSIONS).
ctrd_dir() { tool_dir containerd "$1"; }
# Scenario labels: the minors. 1.6 is Debian's; ctrd_label v2.1.9 -> 2.1.
ctrd_label() { sed -E 's/^v?([0-9]+\.[0-9]+).*/\1/' <<<"$1"; }
ctrd_labels() { local v; echo 1.6; for v in "${CONTAINERD_VERSIONS[@]}"; do ctrd_label "$v"; done; }
# The label of the 2.x the token/ and doctor/ scenarios use beside 1.6.
C2_LABEL=$(ctrd_label "$CONTAINERD2_VERSION")
# ctrd_label_version LABEL: the pinned version of a built minor (v2.1.9 for 2.1).
ctrd_label_version() {
  local v
  for v in "${CONTAINERD_VERSIONS[@]}"; do [ "$(ctrd_label "$v")" = "$1" ] && { echo "$v"; return 0; }; done
  return 1
}
ctrd_label_dir() { local v; v=$(ctrd_label_version "$1") && ctrd_dir "$v"; }
# ctrd_at_least LABEL MAJOR.MINOR: the minor LABEL is MAJOR.MINOR or newer.
ctrd_at_least() {
  local a=${1%%.*} b=${1#*.} c=${2%%.*} d=${2#*.}
  [ "$a" -gt "$c" ] || { [ "$a" = "$c" ] && [ "$b" -ge "$d" ]; }
}
dockerd_dir() { tool_dir dockerd "$DOCKERD_MODULE_VERSION+$DOCKERD_RELEASE"; }

# tool_cached DIR BINARY...: every binary is in DIR.
tool_cached() {
  local dir=$1 b; shift
  for b in "$@"; do [ -x "$dir/$b" ] || return 1; done
}

# tool_build NAME VERSION HOW CMD...: build into a temporary directory (passed to CMD as
# $TOOL_OUT) and rename it to the cache directory if CMD succeeds. One line with the wall
# time and the CPU time (user + sys of the build's processes: what a machine of its own
# would need, whatever else runs) names the build by HOW. The build's output goes to
# $E2E_LOGS/go-build-NAME@VERSION.log. Run in a subshell of its own (go_tools_ensure):
# SIGTERM to it stops the build and removes the temporary directory.
tool_build() {
  local name=$1 version=$2 how=$3; shift 3
  local dir tmp log=$E2E_LOGS/go-build-$name@$version.log t rc cpu
  dir=$(tool_dir "$name" "$version")
  tmp=$E2E_CACHE/tools/.build-$name@$version-$BASHPID
  rm -rf "$tmp" && mkdir -p "$tmp" || return 1
  t=$(now_ms)
  TOOL_OUT=$tmp logged "$log" "$@" &
  local bpid=$!
  trap 'kill -TERM "$bpid" 2>/dev/null; wait "$bpid"; rm -rf "$tmp"; exit 143' TERM INT
  wait "$bpid"; rc=$?
  trap - TERM INT
  # `times`: this subshell's children's user and sys time, e.g. "5m3.120s 0m40.010s"
  times >"$log.times"   # (not in $(...): a forked shell starts with no children's time)
  cpu=$(tail -n 1 "$log.times" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.0fs", s }')
  printf 'time  %-48s %8s  (CPU %s)%s\n' "$how $name@$version" "$(secs_since "$t")" "$cpu" "$([ $rc -eq 0 ] || echo "  (exit $rc)")"
  if [ $rc -ne 0 ]; then show_tail "$log"; rm -rf "$tmp"; return 1; fi
  rm -rf "$dir" && mv "$tmp" "$dir"
}

# go_ ARGS...: go, ignoring the caller's GOFLAGS and workspace. (On a shared machine, run
# the whole harness under nice: the builds inherit it.)
go_() { env GOFLAGS= GOWORK=off go "$@"; }

# go_install_to ENVS FLAGS PKG@VERSION...: go install into $TOOL_OUT.
go_install_to() {
  local envs=$1 flags=$2; shift 2
  # shellcheck disable=SC2086 # $envs and $flags are word lists by design
  env GOBIN="$TOOL_OUT" $envs GOFLAGS= GOWORK=off go install $flags "$@"
}

# go_module_build_to MODULE@VERSION ENVS FLAGS CMD...: `go build` of ./cmd/CMD... inside the
# module's own directory in the module cache (the module is the main module: its go.mod,
# exclude directives included, and its go.sum decide every dependency), into $TOOL_OUT.
go_module_build_to() {
  local modver=$1 envs=$2 flags=$3 dir c pkgs=(); shift 3
  dir=$(go_ mod download -json "$modver" | jq -r '.Dir // empty') && [ -d "$dir" ] ||
    { echo "go mod download $modver failed"; return 1; }
  for c in "$@"; do pkgs+=("./cmd/$c"); done
  # -mod=readonly: the module cache is read-only, and the zip of 2.0 keeps a vendor/modules.txt
  # without the vendored code, which the default -mod=vendor would trust.
  # shellcheck disable=SC2086
  (cd "$dir" && env $envs GOFLAGS= GOWORK=off go build -mod=readonly $flags -o "$TOOL_OUT/" "${pkgs[@]}")
}

# The pinned tools as build jobs: tool_jobs prints NAME VERSION for every tool, slowest first
# (dockerd), so the two lanes finish together; tool_job NAME VERSION builds one.
tool_jobs() {
  local v
  echo "dockerd $DOCKERD_MODULE_VERSION+$DOCKERD_RELEASE"
  for v in "${CONTAINERD_VERSIONS[@]}"; do echo "containerd $v"; done
  echo "distribution $DISTRIBUTION_VERSION"
  echo "crictl $CRICTL_VERSION"
  echo "crane $CRANE_VERSION"
}
tool_bins() {  # tool_bins NAME: the binaries a tool directory must hold
  case $1 in
    dockerd) echo dockerd ;;
    containerd) echo "${CONTAINERD_CMDS[*]}" ;;
    distribution) echo registry ;;
    *) echo "$1" ;;
  esac
}
tool_job() {
  local name=$1 version=$2 p args=()
  case $name in
    crane | crictl | distribution)
      local -n pkgs="${name^^}_PKGS"
      for p in "${pkgs[@]}"; do args+=("$p@$version"); done
      tool_build "$name" "$version" "go install" go_install_to "CGO_ENABLED=0" "" "${args[@]}" ;;
    containerd)
      local mod=github.com/containerd/containerd
      [[ $version == v1.* ]] || mod=$mod/v2
      tool_build containerd "$version" "go build (module $mod)" go_module_build_to "$mod@$version" \
        "CGO_ENABLED=1" "-tags=${CONTAINERD_TAGS// /,}" "${CONTAINERD_CMDS[@]}" ;;
    dockerd)
      for p in "${DOCKERD_PKGS[@]}"; do args+=("$p@$DOCKERD_MODULE_VERSION"); done
      tool_build dockerd "$version" "go install" go_install_to "CGO_ENABLED=0" "" -ldflags="$DOCKERD_LDFLAGS" "${args[@]}" ;;
    *) echo "unknown tool $name"; return 1 ;;
  esac
}

# tool_scenarios NAME VERSION: the scenarios that need the tool (crane and crictl: all).
tool_scenarios() {
  local l s
  case $1 in
    containerd)
      l=$(ctrd_label "$2")
      for s in handmade-config handmade-header sync-config sync-header legacy sync-auto colon-list; do
        echo "containerd-$l/$s"
      done
      if [ "$2" = "$CONTAINERD2_VERSION" ]; then
        echo node/unhealthy; echo docker-29/classic-store; echo docker-29/handmade-store; echo docker-29/containerd-store
        printf '%s\n' token/containerd-"$C2_LABEL"-{config,header} doctor/faults doctor/ok  # use_containerd "$C2_LABEL"
      fi ;;
    dockerd) echo docker-29/classic-store; echo docker-29/handmade-store; echo docker-29/containerd-store ;;
    distribution) printf '%s\n' token/containerd-{1.6,"$C2_LABEL"}-{config,header} token/docker doctor/faults doctor/ok ;;
    *) echo '*' ;;
  esac
}
# tool_wanted NAME VERSION: without E2E_ONLY every tool; with it, those a selected scenario needs.
tool_wanted() {
  local n
  [ -n "${E2E_ONLY:-}" ] || return 0
  while read -r n; do
    [ "$n" = '*' ] && return 0
    [[ $n =~ $E2E_ONLY ]] && return 0
  done < <(tool_scenarios "$1" "$2")
  return 1
}

running_count() { local p n=0; for p in "$@"; do alive "$p" && n=$((n + 1)); done; echo $n; }

# go_tools_ensure: build every missing tool, at most E2E_BUILD_JOBS at once. Sets
# TOOLDIR_crane, TOOLDIR_crictl and TOOLDIR_distribution; a failed build is reported and leaves its
# directory absent (the scenarios that need it then fail, the others run).
TOOLS_FAILED=()
go_tools_ensure() {
  local name version jobs=() pids=() failed=0 i
  TOOLDIR_crane=$(tool_dir crane "$CRANE_VERSION")
  TOOLDIR_crictl=$(tool_dir crictl "$CRICTL_VERSION")
  TOOLDIR_distribution=$(tool_dir distribution "$DISTRIBUTION_VERSION")
  while read -r name version; do
    # shellcheck disable=SC2046
    if tool_cached "$(tool_dir "$name" "$version")" $(tool_bins "$name"); then
      say "tool: $name@$version cached"
    elif ! tool_wanted "$name" "$version"; then
      say "tool: $name@$version not built (no scenario selected by E2E_ONLY needs it)"
    else
      jobs+=("$name $version")
    fi
  done < <(tool_jobs)
  [ ${#jobs[@]} -gt 0 ] || return 0
  say "tool: building ${#jobs[@]} (at most ${E2E_BUILD_JOBS} at a time, logs $E2E_LOGS/go-build-*.log): ${jobs[*]}"
  mkdir -p "$E2E_CACHE/tools"
  declare -A job_of=()
  for ((i = 0; i < ${#jobs[@]}; i++)); do
    # (polled, not `wait -n`: that could reap debootstrap, which rootfs_wait waits for)
    while [ "$(running_count "${pids[@]}")" -ge "$E2E_BUILD_JOBS" ]; do sleep 1; done
    # shellcheck disable=SC2086
    ( tool_job ${jobs[$i]} ) &
    pids+=($!)
    job_of[$!]=${jobs[$i]}
    PIDS+=($!); PID_NAME[$!]="build ${jobs[$i]}"   # stopped by the EXIT trap if the run is
  done
  for i in "${pids[@]}"; do
    if ! wait "$i"; then
      failed=1; TOOLS_FAILED+=("${job_of[$i]}")
    fi
  done
  [ $failed = 0 ]
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
