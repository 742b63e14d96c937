# shellcheck shell=bash
# containerd on the sandboxed host: started by hand (there is no systemd on the CI host)
# from /usr/bin/containerd with its default config /etc/containerd/config.toml, socket
# /run/containerd/containerd.sock, root /var/lib/containerd. use_containerd picks 1.6
# (Debian) or a built 1.7 / 2.x for those paths. Functions that differ by version take the
# label (1.6, 1.7, 2.0 … 2.4): 1.x has the v2 config schema and one CRI plugin, 2.x the v3
# schema and the separate io.containerd.cri.v1.images plugin that owns the registry config.

CTRD_SOCK=/run/containerd/containerd.sock
CTRD_PID=
CTR=/usr/bin/ctr

ctr_() { timeout 20 "$CTR" --address "$CTRD_SOCK" "$@" 2> >(grep -v 'cgroup v1 is deprecated' >&2); }

# crictl against the running containerd, by flags (independent of /etc/crictl.yaml).
cri() { "$TOOLDIR_crictl/crictl" -r "unix://$CTRD_SOCK" -i "unix://$CTRD_SOCK" -t 30s "$@"; }

ctrd_start() {
  CTRD_LOG=$E2E_LOGS/containerd-${CURRENT_SCENARIO//\//_}.log
  rm -f "$CTRD_SOCK"
  local t; t=$(now_ms)
  spawn "containerd $CTRD_LABEL" "$CTRD_LOG" /usr/bin/containerd
  CTRD_PID=$LAST_PID
  CTRD_MARK=$(log_mark "$CTRD_LOG")
  local i
  for ((i = 0; i < 300; i++)); do
    if ctr_ version >/dev/null 2>&1; then
      echo "containerd $CTRD_LABEL ready in $(secs_since "$t") (pid $CTRD_PID)" >>"$SCEN_LOG"
      return 0
    fi
    alive "$CTRD_PID" || break
    sleep 0.1
  done
  return 1
}

ctrd_stop() { stop_pid "$CTRD_PID" TERM 20; CTRD_PID=; }

ctrd_restart() { ctrd_stop; ctrd_start; }

# ctrd_plugins_ok: the CRI plugins report "ok" (the process being up proves nothing:
# a conflicting config leaves containerd running with CRI disabled).
ctrd_plugins_ok() {
  local ids=(io.containerd.grpc.v1.cri) id st out rc=0
  [[ $CTRD_LABEL == 1.* ]] || ids+=(io.containerd.cri.v1.images)
  out=$(ctr_ plugins ls 2>&1) || { echo "$out"; return 1; }
  for id in "${ids[@]}"; do
    st=$(awk -v id="$id" '$1 "." $2 == id { print $NF }' <<<"$out")
    echo "$id: ${st:-missing}"
    [ "$st" = ok ] || rc=1
  done
  [ $rc = 0 ] || grep -E ' (error|skip)$' <<<"$out"
  return $rc
}

# cri_pull_via LOG NS REF: crictl pull REF (no credentials given) succeeds, and the registry
# writing LOG served a manifest for upstream NS (so the mirror, not the upstream, served it).
cri_pull_via() {
  local logf=$1 ns=$2 ref=$3 mark out
  mark=$(log_mark "$logf")
  out=$("${CRI_CMD:-cri}" pull "$ref" 2>&1) || { echo "$out"; return 1; }
  echo "$out"
  served_ns "$logf" "$mark" "$ns" || {
    echo "pulled, but $logf shows no manifest request with ?ns=$ns since the pull:"
    log_since "$logf" "$mark" | tail -n 8
    return 1
  }
}

# cri_pull_direct LOG REF: crictl pull REF of an image on the registry host itself (no
# mirror; credentials from config.toml or from certs.d/<host>/hosts.toml) is served.
cri_pull_direct() {
  local logf=$1 ref=$2 mark out
  mark=$(log_mark "$logf")
  out=$("${CRI_CMD:-cri}" pull "$ref" 2>&1) || { echo "$out"; return 1; }
  echo "$out"
  served_direct "$logf" "$mark" || { echo "pulled, but $logf shows no direct manifest request"; return 1; }
}

# cri_pull_fails REF: the pull must fail (used before any mirror is configured).
cri_pull_fails() {
  local out
  if out=$("${CRI_CMD:-cri}" pull "$1" 2>&1); then echo "pull succeeded without a mirror: $out"; return 1; fi
  echo "$out" | tail -n 1
}

# The registry part of `containerd config dump` removed: what must not change in a sync.
# Drops every table whose header names the CRI registry (and its subtables).
dump_without_registry() {
  awk '
    /^[ \t]*\[/ { h = $0; gsub(/^[ \t]+|[ \t]+$/, "", h); skip = (h ~ /\.registry([].]|$)/) }
    !skip { print }'
}

# config_dump FILE: containerd's view of /etc/containerd/config.toml (after its migration).
config_dump() { /usr/bin/containerd config dump >"$1" 2>"$1.stderr"; }

# dump_diff_only_registry BEFORE AFTER: outside the registry tables nothing changed.
dump_diff_only_registry() {
  local d
  d=$(diff -u <(dump_without_registry <"$1") <(dump_without_registry <"$2")) && return 0
  echo "containerd config dump changed outside the registry tables:"
  echo "$d" | head -n 60
  return 1
}

# toml_string VALUE: a TOML basic string (JSON's escaping is valid TOML here).
toml_string() { jq -Rn --arg v "$1" '$v'; }
basic_b64() { printf '%s:%s' "$1" "$2" | base64 -w0; }

# containerd_baseline_config LABEL: a hand-made node config with settings of its own,
# in the schema a node of that version typically has (v2 for 1.x, v3 for 2.x).
containerd_baseline_config() {
  if [[ $1 == 1.* ]]; then
    cat <<'EOF'
version = 2
# hand-made node config: every setting outside the registry must survive a sync
oom_score = -999

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "127.0.0.1:5001/library/test:latest"
    max_concurrent_downloads = 2
    stream_server_address = "127.0.0.1"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
EOF
  else
    # 2.0 has only cni.bin_dir; 2.1 added bin_dirs (and deprecated bin_dir)
    local bindirs='bin_dirs = ["/usr/lib/cni"]'
    [ "$1" = 2.0 ] && bindirs='bin_dir = "/usr/lib/cni"'
    cat <<EOF
version = 3
# hand-made node config: every setting outside the registry must survive a sync
oom_score = -999

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "127.0.0.1:5001/library/test:latest"
  [plugins."io.containerd.cri.v1.runtime"]
    [plugins."io.containerd.cri.v1.runtime".cni]
      $bindirs
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
  [plugins."io.containerd.transfer.v1.local"]
    max_concurrent_downloads = 2
EOF
  fi
}

# containerd_legacy_config: a 1.x-era config (version 2) that still uses registry.mirrors,
# for an upstream the spec does not name and for docker.io (which the spec overrides).
containerd_legacy_config() {
  cat <<EOF
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "127.0.0.1:5001/library/test:latest"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
    [plugins."io.containerd.grpc.v1.cri".registry]
      [plugins."io.containerd.grpc.v1.cri".registry.mirrors]
        [plugins."io.containerd.grpc.v1.cri".registry.mirrors."legacy.example.invalid"]
          endpoint = ["http://$REG_OPEN"]
        [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
          endpoint = ["http://$REG_OPEN"]
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
EOF
}

# The files mirrorctl is expected to produce, written by hand (the harness's own proof
# that registry, image and engine work, independent of mirrorctl).
# handmade_containerd LABEL CREDS(config|header)
handmade_containerd() {
  local version=$1 creds=$2 table up server dir
  table='plugins."io.containerd.grpc.v1.cri".registry'
  [[ $version == 1.* ]] || table='plugins."io.containerd.cri.v1.images".registry'
  {
    containerd_baseline_config "$version"
    printf '\n  [%s]\n    config_path = "/etc/containerd/certs.d"\n' "$table"
    if [ "$creds" = config ]; then
      printf '    [%s.configs."%s".auth]\n      username = "%s"\n      password = %s\n' \
        "$table" "$REG_AUTH" "$REG_USER" "$(toml_string "$REG_PASS")"
    fi
  } >/etc/containerd/config.toml
  if [ "$creds" = header ]; then  # the mirror host's own directory, for direct pulls
    # containerd 1.6 ignores the server's [header] unless the file has a [host] table
    # (measured: 401 without it); an empty one is enough.
    mkdir -p "/etc/containerd/certs.d/$REG_AUTH"
    printf 'server = "http://%s"\n\n[header]\n  Authorization = "Basic %s"\n\n[host]\n' \
      "$REG_AUTH" "$(basic_b64 "$REG_USER" "$REG_PASS")" >"/etc/containerd/certs.d/$REG_AUTH/hosts.toml"
  fi
  for up in registry.example.invalid docker.io; do
    server=https://$up; [ "$up" = docker.io ] && server=https://registry-1.docker.io
    dir=/etc/containerd/certs.d/$up
    mkdir -p "$dir"
    {
      printf 'server = "%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$server" "$REG_AUTH"
      if [ "$creds" = header ]; then
        printf '  [host."http://%s".header]\n    Authorization = "Basic %s"\n' "$REG_AUTH" "$(basic_b64 "$REG_USER" "$REG_PASS")"
      fi
    } >"$dir/hosts.toml"
  done
}
