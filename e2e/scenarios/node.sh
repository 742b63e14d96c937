# shellcheck shell=bash
# The systemd node (systemd-nspawn): Debian's containerd managed by a real systemd.
#   node/sync   mirrorctl sync inside the node, with its default spec path
#               /etc/mirrorctl/config.yaml; containerd restarted through systemd (by
#               mirrorctl or, while activation is pending, by systemctl); crictl pulls
#               through the mirror with the node's /etc/crictl.yaml.
#   node/unhealthy    issue 4 (d): a real fault after the restart is detected, the backup
#                     set restored, containerd restarted again (containerd 2.x in the node)
#   node/activation   issue 4 (a), (b), (c), (e) in one boot (containerd 1.6 and dockerd):
#                     least-disruptive activation through the node's systemd, and rollback
# (details above each function below)

node_collect() { node_journal containerd.service docker.service; }

sc_node_sync() {
  local out=$E2E_WORK/scen/node-boot.out
  mkdir -p "${out%/*}"
  SCEN_LOG_HOOK=node_collect
  # not in $(...): node_boot sets NODE_* and records the nspawn PID in this shell
  if ! node_boot sync >"$out" 2>&1; then
    cat "$out" >>"$SCEN_LOG"
    fail "node boots to 'running'"; tail -n 20 "$out" | sed 's/^/      | /'
    node_shutdown; return
  fi
  cat "$out" >>"$SCEN_LOG"
  pass "node boots to 'running' ($(grep -o "after [0-9.]*s" "$out"))"
  SCEN_LOGS=("$NODE_DIR/journal.log")
  SCEN_FILES=("$NODE_DIR/etc-mirrorctl/config.yaml" "$NODE_DIR/etc-snapshot")
  check "containerd.service is active" node_wait_active containerd.service
  check "containerd answers on its socket" node_wait_socket

  # The spec at mirrorctl's default path, the password file beside it (mode 0600).
  printf '%s\n' "$REG_PASS" >"$NODE_DIR/etc-mirrorctl/registry-password"
  chmod 0600 "$NODE_DIR/etc-mirrorctl/registry-password"
  { spec_mirrors /etc/mirrorctl/registry-password; spec_engines true false false true; } >"$NODE_DIR/etc-mirrorctl/config.yaml"

  local pid0 pid1
  pid0=$(node_prop containerd.service MainPID)
  check "mirrorctl sync inside the node (default spec path, --root /)" node_sh /usr/local/bin/mirrorctl sync || { node_shutdown; return; }
  pid1=$(node_prop containerd.service MainPID)
  if [ "$pid1" = "$pid0" ]; then
    info "mirrorctl sync left containerd running (MainPID $pid0): restarting it with systemctl"
    check "systemctl restart containerd.service" node_sh systemctl restart containerd.service
  else
    info "mirrorctl sync restarted containerd itself (MainPID $pid0 -> $pid1)"
  fi
  check "containerd.service is active after the restart" node_wait_active containerd.service
  check "containerd answers on its socket" node_wait_socket
  check "CRI plugin reports ok" node_plugins_ok
  check "crictl pull registry.example.invalid/... inside the node, served by the auth mirror" \
    node_cri_pull_via "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "crictl pull test:latest (docker.io) inside the node, served by the auth mirror" \
    node_cri_pull_via "$REG_LOG_AUTH" docker.io test:latest
  check "mirrorctl plan --exit-code inside the node: nothing pending" node_sh /usr/local/bin/mirrorctl plan --exit-code
  node_shutdown
}

# ------------------------------------------------------------------ issue 4, shared helpers
# mirrorctl runs inside the node with its default paths (--root /, spec at
# /etc/mirrorctl/config.yaml) and activates through the node's systemd on its system bus.
# The node's /etc/containerd is seeded by the harness (lib/node.sh: etc-containerd/).

# The node's config.toml before mirrorctl: Debian's (version 2), plus an imports line and
# comments a platform team would write (mirrorctl must keep every one of them).
na_config_toml() {
  cat <<'EOF'
# containerd configuration for this node; managed by the platform team.
version = 2
imports = ["/etc/containerd/conf.d/*.toml"] # drop-ins from the image build

[plugins]
  # CRI: networking comes from the distribution's CNI plugins.
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni" # Debian's path
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
EOF
}

# na_comments_kept: every comment of the node's own config.toml is still in it.
na_comments_kept() {
  local f=$NODE_DIR/etc-containerd/config.toml missing=0 c
  while IFS= read -r c; do
    grep -qF -- "$c" "$f" || { echo "comment lost: $c"; missing=1; }
  done < <(na_config_toml | grep -o '#.*')
  echo "$(na_config_toml | grep -c '#') comments checked"
  return $missing
}

# na_dump_without_registry: `containerd config dump` in the node without the CRI registry
# tables and the config_path key (what mirrorctl manages): the rest must not change.
na_dump_without_registry() {
  node_sh containerd config dump | awk '
    /^[[:space:]]*\[/ { skip = ($0 ~ /\.registry([."\]]|$)/) }
    !skip && $0 !~ /config_path/'
}

# na_dump_same: the dump without the registry settings is as before mirrorctl.
na_dump_same() {
  na_dump_without_registry >"$NA_D/dump-now.txt" || return 1
  echo "$(wc -l <"$NA_D/dump-base.txt") lines compared"
  diff -u "$NA_D/dump-base.txt" "$NA_D/dump-now.txt"
}

# An imported drop-in from the 1.x era: registry.mirrors for docker.io and an upstream the
# spec does not name (CRI loads with it alone).
na_legacy_toml() {
  cat <<EOF
version = 2

[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
  endpoint = ["http://$REG_OPEN"]
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."legacy.example.invalid"]
  endpoint = ["http://$REG_OPEN"]
EOF
}

# na_spec "REGISTRY.EXAMPLE.INVALID URLS" "DOCKER.IO URLS" DOCKER(true|false) [CREDS]: the
# spec; crictl stays out of it (the harness gives crictl its endpoints by flags).
na_spec() {
  local u
  printf 'mirrors:\n  registry.example.invalid:\n    endpoint:\n'
  for u in $1; do printf '      - "%s"\n' "$u"; done
  printf '  docker.io:\n    endpoint:\n'
  for u in $2; do printf '      - "%s"\n' "$u"; done
  cat <<EOF
configs:
  "$REG_AUTH":
    auth:
      username: $REG_USER
      password_file: /etc/mirrorctl/registry-password
engines:
  containerd: {enabled: true${4:+, credentials: $4}}
  docker: {enabled: $3}
  k3s: {enabled: false}
  crictl: {enabled: false}
EOF
}

# na_central yes|no: watch's central config: spec A's registries and, with yes, a CA for
# ca.example.invalid:5000 (a configs: entry alone, with TLS).
na_central() {
  cat <<EOF
mirrors:
  registry.example.invalid:
    endpoint: ["http://$REG_AUTH"]
  docker.io:
    endpoint: ["http://$REG_OPEN"]
configs:
  "$REG_AUTH":
    auth:
      username: $REG_USER
      password_file: /etc/mirrorctl/registry-password
EOF
  if [ "$1" = yes ]; then
    printf '  "ca.example.invalid:5000":\n    tls:\n      ca_file: /etc/mirrorctl/central-ca.pem\n'
  fi
  cat <<EOF
engines:
  containerd: {enabled: true, credentials: config}
  docker: {enabled: true}
  k3s: {enabled: false}
  crictl: {enabled: false}
EOF
}

# na_seed LABEL: the node's /etc/containerd (config.toml importing conf.d/*.toml, an empty
# conf.d) and /etc/mirrorctl (the password file), before node_boot.
na_seed() {
  local nd; nd=$(node_dir "$1")
  NA_D=$E2E_WORK/scen/node-$1
  mkdir -p "$NA_D" "$nd/etc-containerd/conf.d" "$nd/etc-mirrorctl" &&
    na_config_toml >"$nd/etc-containerd/config.toml" &&
    printf '%s\n' "$REG_PASS" >"$nd/etc-mirrorctl/registry-password" &&
    chmod 0600 "$nd/etc-mirrorctl/registry-password"
}

# na_boot LABEL WHAT [nspawn args...]: boot the node, one PASS/FAIL line.
na_boot() {
  local label=$1 what=$2 out=$NA_D/boot.out; shift 2
  SCEN_LOG_HOOK=node_collect
  if ! node_boot "$label" "$@" >"$out" 2>&1; then
    cat "$out" >>"$SCEN_LOG"
    fail "node boots to 'running' ($what)"; tail -n 20 "$out" | sed 's/^/      | /'
    node_shutdown; return 1
  fi
  cat "$out" >>"$SCEN_LOG"
  grep -q 'booting it once more' "$out" && info "the node's first boot had units fail with status=219/CGROUP; booted it once more"
  pass "node boots to 'running' ($what, $(grep -o "after [0-9.]*s" "$out" | tail -n 1))"
  SCEN_LOGS=("$NODE_DIR/journal.log")
  SCEN_FILES=("$NODE_DIR/etc-containerd" "$NODE_DIR/etc-docker/daemon.json" "$NODE_DIR/etc-mirrorctl/config.yaml")
  NA_SPEC=$NODE_DIR/etc-mirrorctl/config.yaml
}

# na_run NAME ARGS...: mirrorctl ARGS inside the node; stdout, stderr and exit status in
# $NA_D/NAME.{out,err,rc} (run here, not in a check's subshell, so later checks read them).
na_run() {
  local name=$1; shift
  node_mctl "$@" >"$NA_D/$name.out" 2>"$NA_D/$name.err"
  echo $? >"$NA_D/$name.rc"
  printf '%s\n' "--- mirrorctl $* (exit $(cat "$NA_D/$name.rc"))" >>"$SCEN_LOG"
  cat "$NA_D/$name.out" "$NA_D/$name.err" >>"$SCEN_LOG"
}

# na_exit NAME CODE: the run exited with CODE (else its output, for the failure report).
na_exit() {
  local rc; rc=$(cat "$NA_D/$1.rc")
  echo "exit status $rc"
  [ "$rc" = "$2" ] && return 0
  cat "$NA_D/$1.out" "$NA_D/$1.err"; return 1
}

# na_json NAME: the JSON document of NAME's stdout.
na_json() { cat "$NA_D/$1.out"; }

# na_activated NAME "engine:disruption ...": exactly these activations done, none pending.
na_activated() {
  local got pend
  got=$(na_json "$1" | jq -r '[.activated[] | .engine + ":" + .disruption] | join(" ")') || { cat "$NA_D/$1.out"; return 1; }
  pend=$(na_json "$1" | jq -r '[.pending_activation[] | .engine + ":" + .disruption] | join(" ")')
  echo "activated: [$got]; pending: [$pend]"
  [ "$got" = "$2" ] && [ -z "$pend" ]
}

# na_written NAME PATH...: exactly these files were written.
na_written() {
  local name=$1 got want; shift
  got=$(na_json "$name" | jq -r '.written | sort | join(" ")')
  want=$(printf '%s\n' "$@" | sort | paste -sd' ')
  echo "written: [$got]"
  [ "$got" = "$want" ]
}

# na_sums: sha256 of every file under the node's /etc/containerd and of
# /etc/docker/daemon.json (relative names); na_snap LABEL keeps them and a copy of the files.
na_sums() {
  (cd "$NODE_DIR" && find etc-containerd etc-docker/daemon.json -type f -print0 | sort -z | xargs -0 sha256sum)
}
na_snap() {
  na_sums >"$NA_D/$1.sums"
  rm -rf "$NA_D/$1.tree" && mkdir -p "$NA_D/$1.tree" &&
    cp -a "$NODE_DIR/etc-containerd" "$NODE_DIR/etc-docker/daemon.json" "$NA_D/$1.tree/"
}
# na_same LABEL: every file byte-identical to snapshot LABEL, none added, none missing.
na_same() {
  local d
  d=$(diff -u "$NA_D/$1.sums" <(na_sums)) && { echo "$(wc -l <"$NA_D/$1.sums") files byte-identical to '$1'"; return 0; }
  echo "$d"
  diff -ru "$NA_D/$1.tree/etc-containerd" "$NODE_DIR/etc-containerd" | head -n 40
  diff -u "$NA_D/$1.tree/daemon.json" "$NODE_DIR/etc-docker/daemon.json"
  return 1
}

# na_eq WHAT EXPECTED GOT; na_ne WHAT BEFORE AFTER (AFTER non-empty, not 0, different)
na_eq() { echo "$1: expected $2, got $3"; [ "$2" = "$3" ]; }
na_ne() { echo "$1: before $2, after $3"; [ -n "$3" ] && [ "$3" != 0 ] && [ "$2" != "$3" ]; }

# na_starts_now UNIT N / na_reloads_now UNIT N: the journal has exactly N "Started UNIT" /
# "Reloaded UNIT" lines (after waiting, bounded, for journald to catch up).
na_starts_now() {
  node_journal_wait "$1" Started "$2"
  na_eq "\"Started $1\" lines in the node's journal" "$2" "$(node_starts "$1")"
}
na_reloads_now() {
  node_journal_wait "$1" Reloaded "$2"
  na_eq "\"Reloaded $1\" lines in the node's journal" "$2" "$(node_reloads "$1")"
}

# na_state: the engines' MainPIDs and start/reload counts, in NA_* globals.
na_state() {
  NA_CPID=$(node_prop containerd.service MainPID)
  NA_CSTARTS=$(node_starts containerd.service)
  if [ "${NA_DOCKER:-true}" = true ]; then
    NA_DPID=$(node_prop docker.service MainPID)
    NA_DRELOADS=$(node_reloads docker.service)
  fi
}

na_docker_mirrors_are() {
  local got; got=$(node_docker_mirrors)
  echo "docker info (in the node): registry mirrors $got"
  [ "$(jq -c . <<<"$got")" = "$(jq -c . <<<"$1")" ]
}

# na_docker_pull_open: docker pull library/test inside the node, served by the open registry
# (which dockerd can reach only as its docker.io mirror).
na_docker_pull_open() {
  local mark out
  node_sh docker rmi -f "$IMAGE_REPO:$IMAGE_TAG" >/dev/null 2>&1
  mark=$(log_mark "$REG_LOG_OPEN")
  out=$(node_sh docker pull "$IMAGE_REPO:$IMAGE_TAG" 2>&1) || { echo "$out"; return 1; }
  echo "$out" | tail -n 2
  served_docker "$REG_LOG_OPEN" "$mark" || { echo "pulled, but $REG_LOG_OPEN shows no request from dockerd"; return 1; }
}

# na_pull LOG NS REF: crictl pull inside the node, served by the registry writing LOG (?ns=NS).
na_pull() { CRI_CMD=node_crictl cri_pull_via "$@"; }

# na_config_path_is WANT: the config_path containerd's CRI plugin really uses (crictl info).
na_config_path_is() {
  local got
  got=$(node_crictl info 2>/dev/null | jq -r '.config.registry.configPath') || { echo "crictl info failed"; return 1; }
  echo "CRI config registry.configPath: \"$got\""
  [ "$got" = "$1" ]
}

# na_ctrd_version_is V: `containerd --version` inside the node names V.
na_ctrd_version_is() {
  local v; v=$(node_sh containerd --version)
  echo "$v"
  [[ " $v " == *" $1"[\ +]* ]]
}


# na_imports_outcome: after sync-imports, either mirrorctl failed and restored every file, or
# it succeeded and containerd uses what it wrote.
na_imports_outcome() {
  local rc; rc=$(cat "$NA_D/sync-imports.rc")
  grep -v 'level=INFO' "$NA_D/sync-imports.err"
  if [ "$rc" != 0 ]; then
    echo "sync exited $rc"; na_same before-imports; return
  fi
  echo "sync exited 0 and reported containerd healthy"
  local rc=0
  na_config_path_is /etc/containerd/certs.d || rc=1
  na_pull "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG" 2>&1 | tail -n 2 | cut -c1-300
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
  return $rc
}

# na_limit_outcome: after sync-limit, mirrorctl succeeded and containerd runs the new config.
na_limit_outcome() {
  grep -v 'level=INFO' "$NA_D/sync-limit.err"
  na_exit sync-limit 0 && node_wait_active containerd.service 5 && node_plugins_ok &&
    na_config_path_is /etc/containerd/certs.d
}

# na_owned_update NAME: the sync exited 0, wrote registry.example.invalid's hosts.toml and
# reported no conflict.
na_owned_update() {
  cat "$NA_D/$1.out"; grep -v 'level=' "$NA_D/$1.err"
  na_exit "$1" 0 >/dev/null &&
    [ "$(na_json "$1" | jq -c '[.written, .conflicts]')" = '[["/etc/containerd/certs.d/registry.example.invalid/hosts.toml"],[]]' ]
}

# na_owned: the files the node's /var/lib/mirrorctl/state.json says mirrorctl owns, one line.
na_owned() {
  local f=/proc/$NODE_PID1/root/var/lib/mirrorctl/state.json
  if [ -f "$f" ]; then jq -c '.files // {} | keys' "$f"; else echo '[]'; fi
}

na_part() { CURRENT_SCENARIO=node/$1; say "   -- node/$1: $2"; }

# ------------------------------------------------------------------ node/unhealthy
# Issue 4 (d), with a fault the files show: /etc/containerd/config.toml imports conf.d/*.toml,
# and conf.d/10-legacy.toml holds 1.x-era registry.mirrors (CRI loads with it alone). The
# node runs containerd 2.x (the built binaries bound over /usr/bin; dockerd masked): 2.x
# merges an imported plugin table into config.toml's, so the config_path mirrorctl adds
# meets the imported mirrors and the CRI images plugin fails to load ("`mirrors` cannot be
# set when `config_path` is provided"). (containerd 1.x instead replaces config.toml's whole
# CRI table by the imported one: see node/imports-1.6 below.)
# `plan` must warn beforehand; `sync` must detect the failure, restore the backup set,
# restart containerd again and exit 4 saying what failed; then CRI is ok, the legacy
# mirrors serve as before and every file is byte-identical to before.
sc_node_unhealthy() {
  local c2 b
  c2=$(ctrd_dir "$CONTAINERD2_VERSION")
  na_seed unhealthy || { fail "seed the node's /etc/containerd"; return; }
  na_legacy_toml >"$(node_dir unhealthy)/etc-containerd/conf.d/10-legacy.toml"
  local binds=()
  for b in containerd ctr containerd-shim-runc-v2; do binds+=("--bind-ro=$c2/$b:/usr/bin/$b"); done
  NA_DOCKER=false
  na_boot unhealthy "containerd $CONTAINERD2_VERSION; docker masked" "${binds[@]}" \
    systemd.mask=docker.service systemd.mask=docker.socket || return
  check "containerd.service is active" node_wait_active containerd.service
  check "containerd answers on its socket" node_wait_socket
  check "the node's containerd is $CONTAINERD2_VERSION" na_ctrd_version_is "${CONTAINERD2_VERSION#v}"
  node_journal_wait containerd.service Started 1
  na_snap before
  na_spec "http://$REG_AUTH" "http://$REG_AUTH" false >"$NA_SPEC"
  cp "$NA_SPEC" "$NA_D/spec.yaml"
  local plugins=(io.containerd.grpc.v1.cri io.containerd.cri.v1.images)
  check "before the sync: CRI plugins ok with the imported legacy mirrors" node_plugins_ok "${plugins[@]}"
  check "before the sync: crictl pull test:latest served by the legacy docker.io mirror" \
    na_pull "$REG_LOG_OPEN" docker.io test:latest

  na_run plan --log-level error plan
  check "mirrorctl plan warns beforehand: the imported file's mirrors will make the CRI plugin fail" \
    bash -c "cat '$NA_D/plan.out'; grep 'imported file /etc/containerd/conf.d/10-legacy.toml' '$NA_D/plan.out' | grep -q 'CRI plugin fail'"
  na_state
  local cpid0=$NA_CPID cstarts0=$NA_CSTARTS own0
  own0=$(na_owned)
  na_run sync --output json sync
  check "mirrorctl sync exits 4 (unhealthy after the change; files restored)" na_exit sync 4
  check "its message says what failed and that the previous files were restored" \
    bash -c "grep -v 'level=' '$NA_D/sync.err'; grep -q 'containerd is unhealthy after the change' '$NA_D/sync.err' &&
      grep -q 'plugin failed to load' '$NA_D/sync.err' &&
      grep -q 'cannot be set when .config_path. is provided' '$NA_D/sync.err' &&
      grep -q 'previous files were restored' '$NA_D/sync.err'"
  check "config.toml and conf.d byte-identical to before, no hosts.toml left" na_same before
  check "the ownership record (state.json) is as before the sync" \
    na_eq "files mirrorctl owns" "$own0" "$(na_owned)"
  check "containerd restarted twice (the change, then the restore): journal" \
    na_starts_now containerd.service $((cstarts0 + 2))
  na_state
  check "containerd has a new MainPID" na_ne "containerd MainPID" "$cpid0" "$NA_CPID"
  check "containerd.service is active" node_wait_active containerd.service
  check "after the restore: CRI plugins ok" node_plugins_ok "${plugins[@]}"
  check "after the restore: crictl pull test:latest served by the legacy docker.io mirror, as before" \
    na_pull "$REG_LOG_OPEN" docker.io test:latest
  check "after the restore: crictl pull legacy.example.invalid/... served by the legacy mirror" \
    na_pull "$REG_LOG_OPEN" legacy.example.invalid "legacy.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  na_run backups --output json backups
  check "mirrorctl backups lists the failed sync's set" \
    bash -c "cat '$NA_D/backups.out'; jq -e '[.[] | select(.id != \"baseline\")] | length == 1 and .[0].reason == \"sync\" and .[0].failed' '$NA_D/backups.out'"
  check "and the baseline, the files as they were before mirrorctl" \
    jq -e '[.[] | select(.id == "baseline")] | length == 1' "$NA_D/backups.out"
  NA_DOCKER=true
  node_shutdown
}

# ------------------------------------------------------------------ node/activation
# Issue 4 (a), (b), (c), (e) in one boot of the node with Debian's containerd 1.6 and dockerd
# 20.10. Parts, in this order, each reporting under its own name:
#   node/restart (b)     spec A (first config_path, credentials in config.toml; first
#                        registry-mirrors): containerd restarted exactly once (new MainPID,
#                        one more "Started" line), dockerd reloaded (same MainPID, one
#                        "Reloaded" line); CRI ok; crictl and docker pull through the mirrors.
#   node/no-restart (a)  spec B changes only registry.example.invalid's endpoints: only its
#                        hosts.toml is written, nothing activated, MainPIDs unchanged, and the
#                        next pull goes through the NEW mirror.
#   node/rollback (e)    `rollback` restores A's files byte for byte, activates nothing (a
#                        certs.d change), the pull uses A's mirror again; `backups` lists sets.
#   node/reload (c)      spec C moves the docker.io mirror: daemon.json changes, dockerd is
#                        reloaded (same MainPID, one "Reloaded" line) and `docker info` lists
#                        the new mirror; containerd (certs.d only) is left alone.
#   node/rollback (e)    `rollback` of C reloads dockerd back to A's mirror; `rollback ID` to
#                        the set saved before A restarts containerd once and leaves config.toml
#                        and daemon.json byte-identical to the node's own.
sc_node_activation() {
  na_seed activation || { fail "seed the node's /etc/containerd"; return; }
  NA_DOCKER=true
  na_boot activation "containerd 1.6, dockerd 20.10" || return
  check "containerd.service is active" node_wait_active containerd.service
  check "docker.service is active" node_wait_active docker.service
  check "containerd answers on its socket" node_wait_socket
  node_journal_wait containerd.service Started 1
  na_snap base   # the node's own files, before mirrorctl
  na_dump_without_registry >"$NA_D/dump-base.txt"
  na_spec "http://$REG_AUTH" "http://$REG_OPEN" true config >"$NA_D/spec-A.yaml"
  na_spec "http://$REG_OPEN http://$REG_AUTH" "http://$REG_OPEN" true config >"$NA_D/spec-B.yaml"
  na_spec "http://$REG_AUTH" "http://$REG_AUTH" true config >"$NA_D/spec-C.yaml"
  local cpid0 dpid0 cstarts0 dreloads0

  # ---------------------------------------------------------------- (b) restart
  na_part restart "(b) a config.toml change restarts containerd exactly once"
  cp "$NA_D/spec-A.yaml" "$NA_SPEC"
  na_state; cpid0=$NA_CPID dpid0=$NA_DPID cstarts0=$NA_CSTARTS dreloads0=$NA_DRELOADS
  na_run sync-A --output json sync
  check "mirrorctl sync (spec A: first config_path, first registry-mirrors)" na_exit sync-A 0 || { node_shutdown; return; }
  check "activated: containerd restart, docker reload; nothing pending" na_activated sync-A "containerd:restart docker:reload"
  check "containerd started exactly once more: journal" na_starts_now containerd.service $((cstarts0 + 1))
  na_state
  check "containerd has a new MainPID" na_ne "containerd MainPID" "$cpid0" "$NA_CPID"
  check "CRI plugin ok" node_plugins_ok
  check "CRI uses config_path /etc/containerd/certs.d (crictl info)" na_config_path_is /etc/containerd/certs.d
  check "crictl pull registry.example.invalid/... (no --creds) served by the auth mirror" \
    na_pull "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "crictl pull test:latest served by the spec's docker.io mirror" na_pull "$REG_LOG_OPEN" docker.io test:latest
  check "dockerd reloaded, not restarted: MainPID unchanged" na_eq "docker MainPID" "$dpid0" "$NA_DPID"
  check "dockerd reloaded once: journal" na_reloads_now docker.service $((dreloads0 + 1))
  check "docker info lists the mirror" na_docker_mirrors_are "[\"http://$REG_OPEN/\"]"
  check "docker pull $IMAGE_REPO:$IMAGE_TAG inside the node served by the mirror" na_docker_pull_open
  na_run plan-A plan --exit-code
  check "mirrorctl plan --exit-code: nothing pending" na_exit plan-A 0
  check "config.toml keeps every comment the node had (edited in place)" na_comments_kept
  check "containerd config dump differs from the node's own only in the registry settings" na_dump_same
  na_snap A
  local set_A; set_A=$(na_json sync-A | jq -r .backup)

  # ---------------------------------------------------------------- (a) hosts.toml only
  na_part no-restart "(a) a hosts.toml-only change restarts nothing"
  cp "$NA_D/spec-B.yaml" "$NA_SPEC"
  na_state; cpid0=$NA_CPID dpid0=$NA_DPID cstarts0=$NA_CSTARTS dreloads0=$NA_DRELOADS
  na_run sync-B --output json sync
  check "mirrorctl sync (spec B: registry.example.invalid -> $REG_OPEN, then $REG_AUTH)" na_exit sync-B 0 || { node_shutdown; return; }
  check "only certs.d/registry.example.invalid/hosts.toml written" \
    na_written sync-B /etc/containerd/certs.d/registry.example.invalid/hosts.toml
  check "nothing activated, nothing pending" na_activated sync-B ""
  na_state
  check "containerd not restarted: MainPID and \"Started\" lines unchanged" \
    na_eq "containerd MainPID/starts" "$cpid0/$cstarts0" "$NA_CPID/$NA_CSTARTS"
  check "dockerd untouched: MainPID and \"Reloaded\" lines unchanged" \
    na_eq "docker MainPID/reloads" "$dpid0/$dreloads0" "$NA_DPID/$NA_DRELOADS"
  check "the next crictl pull registry.example.invalid/... goes through the NEW mirror ($REG_OPEN)" \
    na_pull "$REG_LOG_OPEN" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  local set_B; set_B=$(na_json sync-B | jq -r .backup)

  # ---------------------------------------------------------------- (e) rollback
  na_part rollback "(e) rollback restores the previous set and re-activates what it needs"
  na_state; cpid0=$NA_CPID dpid0=$NA_DPID cstarts0=$NA_CSTARTS dreloads0=$NA_DRELOADS
  na_run rollback-B --output json rollback
  check "mirrorctl rollback (default: the newest set, saved before spec B)" \
    bash -c "cat '$NA_D/rollback-B.out' '$NA_D/rollback-B.err'; [ \"\$(cat '$NA_D/rollback-B.rc')\" = 0 ] && jq -e '.restored == \"$set_B\"' '$NA_D/rollback-B.out'" || { node_shutdown; return; }
  check "rollback --output json prints one JSON document" jq -e . "$NA_D/rollback-B.out"
  check "files byte-identical to after spec A" na_same A
  check "nothing activated (certs.d only), nothing pending" na_activated rollback-B ""
  na_state
  check "containerd and dockerd untouched (MainPIDs, journal)" \
    na_eq "MainPIDs/starts/reloads" "$cpid0/$dpid0/$cstarts0/$dreloads0" "$NA_CPID/$NA_DPID/$NA_CSTARTS/$NA_DRELOADS"
  check "crictl pull registry.example.invalid/... served by A's mirror again ($REG_AUTH)" \
    na_pull "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  na_run backups-e --output json backups
  check "mirrorctl backups lists the sets, newest first: the rollback's own, B's, A's" \
    bash -c "cat '$NA_D/backups-e.out'; jq -e '[.[] | select(.id != \"baseline\")] | [.[].reason] == [\"rollback to $set_B\", \"sync\", \"sync\"] and .[1].id == \"$set_B\" and .[2].id == \"$set_A\"' '$NA_D/backups-e.out'"

  # ---------------------------------------------------------------- (c) reload
  na_part reload "(c) a daemon.json change reloads dockerd"
  cp "$NA_D/spec-C.yaml" "$NA_SPEC"
  na_state; cpid0=$NA_CPID dpid0=$NA_DPID cstarts0=$NA_CSTARTS dreloads0=$NA_DRELOADS
  na_run sync-C --output json sync
  check "mirrorctl sync (spec C: docker.io -> $REG_AUTH)" na_exit sync-C 0 || { node_shutdown; return; }
  check "activated: docker reload only (containerd: certs.d only)" na_activated sync-C "docker:reload"
  na_state
  check "dockerd reloaded, not restarted: MainPID unchanged" na_eq "docker MainPID" "$dpid0" "$NA_DPID"
  check "dockerd reloaded once: journal" na_reloads_now docker.service $((dreloads0 + 1))
  check "docker info lists the new mirror" na_docker_mirrors_are "[\"http://$REG_AUTH/\"]"
  check "containerd not restarted: MainPID and \"Started\" lines unchanged" \
    na_eq "containerd MainPID/starts" "$cpid0/$cstarts0" "$NA_CPID/$NA_CSTARTS"
  check "crictl pull test:latest served by the new docker.io mirror ($REG_AUTH)" na_pull "$REG_LOG_AUTH" docker.io test:latest

  # ---------------------------------------------------------------- (e) rollback, again
  na_part rollback "(e) rollback of a daemon.json change; rollback to the set saved before A"
  na_state; cpid0=$NA_CPID dpid0=$NA_DPID cstarts0=$NA_CSTARTS dreloads0=$NA_DRELOADS
  na_run rollback-C --output json rollback
  check "mirrorctl rollback (the set saved before spec C)" na_exit rollback-C 0
  check "files byte-identical to after spec A" na_same A
  check "activated: docker reload only" na_activated rollback-C "docker:reload"
  na_state
  check "dockerd reloaded, not restarted: MainPID unchanged" na_eq "docker MainPID" "$dpid0" "$NA_DPID"
  check "dockerd reloaded once: journal" na_reloads_now docker.service $((dreloads0 + 1))
  check "docker info lists A's mirror again" na_docker_mirrors_are "[\"http://$REG_OPEN/\"]"
  check "docker pull $IMAGE_REPO:$IMAGE_TAG served by A's mirror again" na_docker_pull_open
  check "crictl pull test:latest served by A's docker.io mirror again" na_pull "$REG_LOG_OPEN" docker.io test:latest
  check "containerd not restarted: MainPID unchanged" na_eq "containerd MainPID" "$cpid0" "$NA_CPID"

  # Back to the node's own files: config.toml without config_path (containerd restarts) and
  # a daemon.json without registry-mirrors. dockerd's reload keeps its mirrors when the key
  # is absent (it applies only keys that are set), so mirrorctl restarts dockerd here.
  na_state; cpid0=$NA_CPID dpid0=$NA_DPID cstarts0=$NA_CSTARTS dreloads0=$NA_DRELOADS
  na_run rollback-A --output json --health-timeout 5s rollback "$set_A"
  if check \
    "mirrorctl rollback $set_A (the set saved before A; daemon.json without registry-mirrors) succeeds" \
    na_exit rollback-A 0; then
    check "config.toml and daemon.json byte-identical to the node's own, no hosts.toml left" na_same base
    check "containerd started exactly once more: journal" na_starts_now containerd.service $((cstarts0 + 1))
    na_state
    check "containerd has a new MainPID" na_ne "containerd MainPID" "$cpid0" "$NA_CPID"
    check "CRI plugin ok" node_plugins_ok
    check "CRI uses no config_path again (crictl info)" na_config_path_is ""
    check "docker info: no registry mirror" na_docker_mirrors_are '[]'
    # daemon.json lost registry-mirrors, which dockerd's reload cannot clear: a restart.
    check "dockerd restarted (a reload cannot drop registry-mirrors): MainPID changed" \
      na_ne "docker MainPID" "$dpid0" "$(node_prop docker.service MainPID)"
  else
    # What mirrorctl does meanwhile: dockerd fails the health check (it still lists A's
    # mirror), so the rollback is itself rolled back, completely.
    check "the failed rollback says what failed (dockerd still lists the mirror) and restored" \
      bash -c "grep -v 'level=' '$NA_D/rollback-A.err'; [ \"\$(cat '$NA_D/rollback-A.rc')\" = 4 ] && grep -q 'docker is unhealthy after the change' '$NA_D/rollback-A.err' && grep -q 'previous files were restored' '$NA_D/rollback-A.err'"
    check "files byte-identical to after spec A again" na_same A
    check "containerd restarted twice (the rollback, its undoing): journal" na_starts_now containerd.service $((cstarts0 + 2))
    check "CRI plugin ok, config_path in effect" na_config_path_is /etc/containerd/certs.d
    check "docker info lists A's mirror" na_docker_mirrors_are "[\"http://$REG_OPEN/\"]"
    # The restore must also put back the ownership record as it was before the rollback:
    # mirrorctl still owns the hosts.toml files it restored, so spec B may update one.
    cp "$NA_D/spec-B.yaml" "$NA_SPEC"
    na_run sync-after-restore --output json sync
    if ! check \
      "after that restore mirrorctl still owns its files: spec B updates registry.example.invalid's hosts.toml, no conflict" \
      na_owned_update sync-after-restore; then
      na_run sync-adopt --output json sync --adopt
      info "ownership taken back with sync --adopt (exit $(cat "$NA_D/sync-adopt.rc"))"
    fi
  fi

  # ---------------------------------------------------------------- known bug: 1.x imports
  na_part imports-1.6 "an imported CRI table on containerd 1.x replaces config.toml's whole CRI table"
  na_legacy_toml >"$NODE_DIR/etc-containerd/conf.d/10-legacy.toml"
  # credentials as a header in hosts.toml: config.toml changes whatever the files are now
  na_spec "http://$REG_AUTH" "http://$REG_AUTH" true header >"$NA_SPEC"
  na_snap before-imports
  na_run plan-imports --log-level error plan
  check "mirrorctl plan warns about the imported file's registry settings" \
    bash -c "cat '$NA_D/plan-imports.out'; grep -q 'imported file /etc/containerd/conf.d/10-legacy.toml' '$NA_D/plan-imports.out'"
  na_run sync-imports --output json --health-timeout 5s sync
  info "sync with the imported legacy mirrors on containerd 1.6: exit $(cat "$NA_D/sync-imports.rc"), activated [$(na_json sync-imports | jq -r '[.activated[] | .engine + ":" + .disruption] | join(" ")' 2>/dev/null)], CRI config_path now \"$(node_crictl info 2>/dev/null | jq -r .config.registry.configPath)\""
  check \
    "containerd 1.6 with an imported CRI table: sync fails and restores, or what it wrote is in effect (config_path, pulls through the spec's mirror)" \
    na_imports_outcome
  rm -f "$NODE_DIR/etc-containerd/conf.d/10-legacy.toml"

  # ---------------------------------------------------------------- start limit (optional)
  na_part start-limit "containerd at its start limit: mirrorctl resets it and retries once"
  printf '[Unit]\nStartLimitIntervalSec=1h\nStartLimitBurst=1\n' \
    >"$NODE_DIR/dropins/containerd.service.d/60-e2e-start-limit.conf"
  node_sh systemctl daemon-reload
  node_sh systemctl restart containerd.service >>"$SCEN_LOG" 2>&1   # the one start the limit allows
  info "before the sync: containerd $(node_prop containerd.service ActiveState), result $(node_prop containerd.service Result)"
  na_spec "http://$REG_AUTH" "http://$REG_OPEN" true config >"$NA_SPEC"
  na_state; cpid0=$NA_CPID cstarts0=$NA_CSTARTS
  na_run sync-limit --output json --health-timeout 5s sync
  info "sync at the start limit: exit $(cat "$NA_D/sync-limit.rc"); containerd $(node_prop containerd.service ActiveState), result $(node_prop containerd.service Result), MainPID $cpid0 -> $(node_prop containerd.service MainPID); $(grep -c 'start limit hit' "$NA_D/sync-limit.err") 'start limit hit' log line(s)"
  check "sync at the start limit succeeds and containerd runs with the new config.toml" \
    na_limit_outcome

  # ---------------------------------------------------------------- watch drops a CA
  na_part watch "watch removes a dropped registry's CA from containerd's and Docker's certs.d, restarting nothing"
  rm -f "$NODE_DIR/dropins/containerd.service.d/60-e2e-start-limit.conf"
  node_sh systemctl daemon-reload; node_sh systemctl reset-failed containerd.service >/dev/null 2>&1
  mkdir -p "$NODE_DIR/etc-mirrorctl/central"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj /CN=e2e-central-ca \
    -days 2 -out "$NODE_DIR/etc-mirrorctl/central-ca.pem" >>"$SCEN_LOG" 2>&1
  na_central yes >"$NODE_DIR/etc-mirrorctl/central/config.yaml"
  local ca_c=/etc/containerd/certs.d/ca.example.invalid:5000 ca_d=/etc/docker/certs.d/ca.example.invalid:5000
  # Type=notify: systemd-run returns once watch's first sync is done (READY=1).
  check "mirrorctl watch started in the node (a transient unit, Type=notify)" \
    node_sh systemd-run --unit=mirrorctl-watch-e2e --property=Type=notify --property=NotifyAccess=main \
    --property=TimeoutStartSec=120 /usr/local/bin/mirrorctl watch --source /etc/mirrorctl/central/config.yaml --resync-interval 0
  check "the central config's CA is in containerd's and Docker's certs.d" \
    node_sh test -f "$ca_c/ca.crt" -a -f "$ca_d/ca.crt"
  na_state; cpid0=$NA_CPID dpid0=$NA_DPID cstarts0=$NA_CSTARTS dreloads0=$NA_DRELOADS
  na_central no >"$NODE_DIR/etc-mirrorctl/central/config.yaml.new" &&
    mv "$NODE_DIR/etc-mirrorctl/central/config.yaml.new" "$NODE_DIR/etc-mirrorctl/central/config.yaml"
  check "the dropped CA leaves both certs.d (watch, no sync by hand)" \
    wait_until 60 node_sh bash -c "! test -e '$ca_c' && ! test -e '$ca_d/ca.crt'"
  check "state.json no longer lists them" \
    bash -c "jq -e '[.files | keys[] | select(contains(\"ca.example.invalid\"))] == []' /proc/$NODE_PID1/root/var/lib/mirrorctl/state.json"
  na_state
  check "nothing restarted or reloaded (MainPIDs, journal)" \
    na_eq "MainPIDs/starts/reloads" "$cpid0/$dpid0/$cstarts0/$dreloads0" "$NA_CPID/$NA_DPID/$NA_CSTARTS/$NA_DRELOADS"
  check "mirrorctl watch stops on SIGTERM" node_sh systemctl stop mirrorctl-watch-e2e

  # ---------------------------------------------------------------- rollback --baseline
  na_part baseline "rollback --baseline puts every engine file back as it was before mirrorctl"
  na_run baseline --output json --health-timeout 60s rollback --baseline
  check "mirrorctl rollback --baseline" na_exit baseline 0
  check "config.toml, conf.d and daemon.json byte-identical to the node's own, no hosts.toml left" na_same base
  check "containerd.service is active" node_wait_active containerd.service
  check "CRI plugin ok" node_plugins_ok
  check "CRI uses no config_path again (crictl info)" na_config_path_is ""
  check "docker.service is active" node_wait_active docker.service
  check "docker info: no registry mirror" na_docker_mirrors_are '[]'
  node_shutdown
}
