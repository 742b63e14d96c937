# shellcheck shell=bash
# containerd scenarios, for every minor of the matrix (V = 1.6 from Debian, 1.7, 2.0 … 2.4
# built from their modules; versions.sh), with the same functions for every version.
# On the sandboxed host (no systemd; the harness restarts containerd by PID):
#   containerd-V/handmade-CREDS   the harness's own proof: hand-written config.toml and
#                                 hosts.toml (what mirrorctl should write) work on this engine
#   containerd-V/sync-CREDS       mirrorctl sync writes them; the engine pulls through the mirror
#   containerd-V/legacy           a config.toml with registry.mirrors is migrated by sync
# CREDS is config (config.toml registry.configs auth) or header (hosts.toml Authorization).
# In the systemd node, containerd V bound over /usr/bin (mirrorctl restarts it through
# systemd and runs its health check, as on a real node):
#   containerd-V/sync-auto        from V's own `containerd config default`, credentials auto:
#                                 sync (restart + health, exit 0), CRI pulls through the auth
#                                 mirror with no --creds, then a hosts.toml-only change is in
#                                 effect for the next pull with containerd's MainPID unchanged
#   containerd-V/colon-list       (2.1 and later: CRI pulls through the transfer service) the
#                                 same from a config_path that is a colon-separated list

# spec_mirrors PASSWORD_FILE: the registries part shared by the containerd, crictl, k3s
# and node specs (plain k3s registries.yaml).
spec_mirrors() {
  cat <<EOF
mirrors:
  registry.example.invalid:
    endpoint: ["http://$REG_AUTH"]
  docker.io:
    endpoint: ["http://$REG_AUTH"]
configs:
  "$REG_AUTH":
    auth:
      username: $REG_USER
      password_file: $1
EOF
}

# spec_engines CONTAINERD DOCKER K3S CRICTL [CREDS]: the engines: extension.
spec_engines() {
  printf 'engines:\n'
  printf '  containerd: {enabled: %s%s}\n' "$1" "${5:+, credentials: $5}"
  printf '  docker: {enabled: %s}\n  k3s: {enabled: %s}\n  crictl: {enabled: %s}\n' "$2" "$3" "$4"
}

# creds_where CREDS DUMP [CERTS_DIR]: the credentials are where the spec asked, and only
# there: in containerd's own view of config.toml (configs."<mirror>".auth), or as an
# Authorization header in certs.d (default /etc/containerd/certs.d).
creds_where() {
  local in_config=no in_hosts=no
  grep -E -A6 "registry\.configs\.['\"]${REG_AUTH}['\"]\.auth\]" "$2" |
    grep -E "^[[:space:]]*(username|auth|password) = ['\"][^'\"]" >/dev/null && in_config=yes
  grep -rsi '^[[:space:]]*authorization' "${3:-/etc/containerd/certs.d}" >/dev/null && in_hosts=yes
  echo "credentials in config.toml: $in_config; Authorization header in certs.d: $in_hosts"
  case $1 in
    config) [ $in_config = yes ] && [ $in_hosts = no ] ;;
    header) [ $in_config = no ] && [ $in_hosts = yes ] ;;
  esac
}

# mctl ARGS...: the mirrorctl under test. On the host there is no systemd: --no-restart,
# and the harness restarts the engines itself.
mctl() { timeout "${E2E_MIRRORCTL_TIMEOUT:-120}" "$MIRRORCTL" "$@"; }

# sc_containerd VERSION CREDS WRITER(handmade|mirrorctl)
sc_containerd() {
  local version=$1 creds=$2 writer=$3 d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  mkdir -p "$d"
  use_containerd "$version" || { fail "use containerd $version binaries"; return; }
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return; }
  SCEN_FILES=(/etc/containerd)
  containerd_baseline_config "$version" >/etc/containerd/config.toml
  config_dump "$d/dump-before.toml" || { fail "containerd config dump (baseline)" "$d/dump-before.toml.stderr"; return; }
  ctrd_start || { fail "containerd $version starts with the baseline config" "$CTRD_LOG"; return; }
  SCEN_LOGS=("$CTRD_LOG")
  check "without a mirror registry.example.invalid is unreachable (no route out of the sandbox)" \
    cri_pull_fails "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"

  if [ "$writer" = mirrorctl ]; then
    { spec_mirrors "$PASS_FILE"; spec_engines true false false false "$creds"; } >"$d/spec.yaml"
    check "mirrorctl sync --no-restart (credentials: $creds)" mctl sync --config "$d/spec.yaml" --no-restart || return
  else
    handmade_containerd "$version" "$creds"
  fi
  config_dump "$d/dump-after.toml" || { fail "containerd config dump after the sync" "$d/dump-after.toml.stderr"; return; }
  check "containerd config dump before/after differs only in the registry tables" \
    dump_diff_only_registry "$d/dump-before.toml" "$d/dump-after.toml"
  check "credentials written as '$creds' and nowhere else" creds_where "$creds" "$d/dump-after.toml"

  ctrd_restart || { fail "containerd $version restarts with the new config" "$CTRD_LOG"; return; }
  check "CRI plugins report ok after the restart" ctrd_plugins_ok
  local ok=0 mark401
  mark401=$(log_mark "$REG_LOG_AUTH")
  check "crictl pull registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG (no --creds) served by the auth mirror (?ns=registry.example.invalid)" \
    cri_pull_via "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG" && ok=$((ok + 1))
  check "crictl pull test:latest (docker.io, no --creds) served by the auth mirror (?ns=docker.io)" \
    cri_pull_via "$REG_LOG_AUTH" docker.io test:latest && ok=$((ok + 1))
  check "crictl pull $REG_AUTH/$IMAGE_REPO:$IMAGE_TAG (the mirror host itself, no --creds)" \
    cri_pull_direct "$REG_LOG_AUTH" "$REG_AUTH/$IMAGE_REPO:$IMAGE_TAG" && ok=$((ok + 1))
  local fallback=n/a
  if [[ $version != 1.* ]]; then
    fallback=$(log_since "$CTRD_LOG" "$CTRD_MARK" | grep 'Falling back to local image pull mode' |
      grep -o "Found '[^']*'" | head -n 1 | sed "s/Found '\(.*\)'/yes(\1)/")
    fallback=${fallback:-no}
  fi
  # 401s: with a static header every request carries credentials; with config auth
  # containerd answers the registry's Basic challenge.
  local n401
  n401=$(log_since "$REG_LOG_AUTH" "$mark401" | grep -c '^127.* 401 ')
  info "MEASURE containerd=$version writer=$writer credentials=$creds pulls_ok=$ok/3 http_401s=$n401 local_pull_fallback_warning=$fallback"

  if [ "$writer" = mirrorctl ]; then
    check "mirrorctl plan --exit-code: nothing pending after the sync (idempotent)" \
      mctl plan --config "$d/spec.yaml" --exit-code
  fi
  if [ "$writer" = mirrorctl ] && [ "$creds" = config ]; then
    check "with the restart done by hand, a settled no-op answers from its record; config.toml rewritten in place makes it plan" \
      noop_record_answers "$d/spec.yaml"
  fi
  ctrd_stop
}

# noop_record_answers SPEC: containerd was restarted by hand after the sync (ctrd_restart), so
# a sync forgets the restart it owed; once nothing has changed for 2 s a no-op keeps its record
# (the first may make its directory), and the next answers from it without planning. Then
# config.toml rewritten in place with the same bytes (same inode and size; only its times move)
# makes the next sync plan, and find nothing to change.
noop_record_answers() {
  local spec=$1 out i
  for i in 1 2 3 4; do
    sleep 2.5
    out=$(mctl --log-level debug sync --config "$spec" --no-restart 2>&1) || { echo "$out"; return 1; }
    grep -q 'not planning again' <<<"$out" && break
  done
  grep -q 'not planning again' <<<"$out" && grep -q '^nothing to change' <<<"$out" || { echo "$out"; return 1; }
  cat /etc/containerd/config.toml >"$E2E_WORK/config.toml.same" &&
    cat "$E2E_WORK/config.toml.same" >/etc/containerd/config.toml || return 1
  out=$(mctl --log-level debug sync --config "$spec" --no-restart 2>&1) || { echo "$out"; return 1; }
  grep -q 'planning: the no-op record does not apply' <<<"$out" && grep -q '^nothing to change' <<<"$out" || { echo "$out"; return 1; }
}

# sc_containerd_legacy VERSION: registry.mirrors in config.toml is migrated by sync.
sc_containerd_legacy() {
  local version=$1 d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  mkdir -p "$d"
  use_containerd "$version" || { fail "use containerd $version binaries"; return; }
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return; }
  SCEN_FILES=(/etc/containerd)
  containerd_legacy_config >/etc/containerd/config.toml
  ctrd_start || { fail "containerd $version starts with the legacy config" "$CTRD_LOG"; return; }
  SCEN_LOGS=("$CTRD_LOG")
  check "before the sync, legacy registry.mirrors serve legacy.example.invalid (harness)" \
    cri_pull_via "$REG_LOG_OPEN" legacy.example.invalid "legacy.example.invalid/$IMAGE_REPO:$IMAGE_TAG"

  { spec_mirrors "$PASS_FILE"; spec_engines true false false false; } >"$d/spec.yaml"
  check "mirrorctl sync --no-restart migrates the legacy config" mctl sync --config "$d/spec.yaml" --no-restart || return
  config_dump "$d/dump-after.toml" || { fail "containerd config dump after the sync" "$d/dump-after.toml.stderr"; return; }
  check "no registry.mirrors left in containerd's view of config.toml" \
    bash -c "! grep -n 'registry\.mirrors\.' '$d/dump-after.toml'"
  ctrd_restart || { fail "containerd $version restarts after the migration" "$CTRD_LOG"; return; }
  check "CRI plugins report ok after the restart" ctrd_plugins_ok
  check "crictl pull registry.example.invalid/... served by the spec's mirror" \
    cri_pull_via "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "crictl pull test:latest served by the spec's docker.io mirror (the spec replaces the legacy one)" \
    cri_pull_via "$REG_LOG_AUTH" docker.io test:latest
  check "crictl pull legacy.example.invalid/... still served (the legacy mirror was migrated, not dropped)" \
    cri_pull_via "$REG_LOG_OPEN" legacy.example.invalid "legacy.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  ctrd_stop
}

# ------------------------------------------------------------------ the version matrix, in the node
COLON_CONFIG_PATH=/etc/containerd/certs.d:/etc/docker/certs.d

# set_registry_config_path FILE VALUE: config_path in the CRI registry table of a
# `containerd config default` output (either schema) becomes VALUE.
set_registry_config_path() {
  local tmp=$1.tmp
  awk -v val="$2" '
    function flush() { if (inreg && !done) { print "      config_path = \"" val "\""; done = 1 } }
    /^[ \t]*\[/ {
      if (inreg) flush()
      h = $0; gsub(/[ \t]/, "", h)
      inreg = (h ~ /cri[^]]*\.registry\]$/)
    }
    inreg && /^[ \t]*config_path[ \t]*=/ { sub(/=.*/, "= \"" val "\""); done = 1 }
    { print }
    END { if (inreg) flush(); if (!done) exit 1 }' "$1" >"$tmp" && mv "$tmp" "$1"
}

# registry_config_path FILE: the config_path line(s) of the CRI registry table, for INFO lines.
registry_config_path() {
  awk '/^[ \t]*\[/ { h = $0; gsub(/[ \t]/, "", h); inreg = (h ~ /cri[^]]*\.registry\]$/) }
    inreg && /^[ \t]*config_path/ { gsub(/^[ \t]+/, ""); print }' "$1"
}

# ctrd_auto_creds LABEL: where credentials: auto puts them (mirrorctl: header from 2.1 on,
# where registry.configs would send CRI back to local pull; config before).
ctrd_auto_creds() { if ctrd_at_least "$1" 2.1; then echo header; else echo config; fi; }

# node_no_local_pull: containerd's journal has no "Falling back to local image pull mode"
# (2.1+: the CRI pulls through the transfer service, as it does without mirrorctl).
node_no_local_pull() {
  local l
  l=$(node_sh journalctl --no-pager -o cat -u containerd.service | grep 'Falling back to local image pull mode')
  [ -z "$l" ] && { echo "no local-pull fallback in containerd's journal"; return 0; }
  echo "$l" | tail -n 2; return 1
}

# na_ctrd_config_path_is LABEL WANT: the registry config_path the node's containerd runs
# with: 1.x reports it in the CRI status (crictl info); 2.4 exports it from its images
# plugin (ctr plugins ls -d); 2.0-2.3 report it nowhere, so there containerd's own merged
# view of its config (containerd config dump, after the restart) is read.
na_ctrd_config_path_is() {
  local got src
  if [[ $1 == 1.* ]]; then
    na_config_path_is "$2"; return
  fi
  got=$(node_sh ctr plugins ls -d 'id==images' 2>/dev/null | awk '$1 == "RegistryConfigPath" { print $2 }')
  src="images plugin export RegistryConfigPath"
  if [ -z "$got" ]; then
    got=$(node_sh /usr/bin/containerd config dump 2>/dev/null | awk '
      /^[ \t]*\[/ { h = $0; gsub(/[ \t]/, "", h); inreg = (h ~ /cri[^]]*\.registry\]$/) }
      inreg && /^[ \t]*config_path/ { sub(/^[^=]*=[ \t]*/, ""); gsub(/^["\x27]|["\x27]$/, ""); print }')
    src="containerd config dump (this version exports it nowhere)"
  fi
  echo "$src: \"$got\""
  [ "$got" = "$2" ]
}

na_ctrd_is_debian16() { local v; v=$(node_sh containerd --version); echo "$v"; grep -Eq ' 1\.6\.[0-9]' <<<"$v"; }
na_pull_fails() { CRI_CMD=node_crictl cri_pull_fails "$@"; }

# nm_spec REGISTRY_EXAMPLE_MIRROR: the matrix spec (docker.io always through the auth mirror),
# credentials: auto.
nm_spec() { na_spec "$1" "http://$REG_AUTH" false auto; }

# sc_containerd_node LABEL auto|colon: see the header of this file.
sc_containerd_node() {
  local label=$1 variant=$2 nlabel="ctrd-$1-$2" nd dir b binds=() creds
  NA_D=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  nd=$(node_dir "$nlabel")
  mkdir -p "$NA_D" "$nd/etc-containerd" "$nd/etc-mirrorctl" || { fail "scenario directories"; return; }
  creds=$(ctrd_auto_creds "$label")

  # the node's config.toml: this version's own default
  if ! use_containerd "$label" >"$NA_D/use.out" 2>&1; then
    fail "containerd $label binaries ($(cat "$NA_D/use.out"))"; return
  fi
  if ! /usr/bin/containerd config default >"$nd/etc-containerd/config.toml" 2>"$NA_D/config-default.err"; then
    fail "containerd $label: containerd config default" "$NA_D/config-default.err"; return
  fi
  cp "$nd/etc-containerd/config.toml" "$NA_D/config-default.toml"
  info "containerd $label: \`containerd config default\` has $(registry_config_path "$NA_D/config-default.toml" | paste -sd' ' | sed 's/^$/no config_path/')"
  if [ "$variant" = colon ]; then
    check "config.toml: the default with config_path = \"$COLON_CONFIG_PATH\"" \
      set_registry_config_path "$nd/etc-containerd/config.toml" "$COLON_CONFIG_PATH" || return
  fi
  printf '%s\n' "$REG_PASS" >"$nd/etc-mirrorctl/registry-password" && chmod 0600 "$nd/etc-mirrorctl/registry-password"

  if [ "$label" != 1.6 ]; then
    dir=$(ctrd_label_dir "$label")
    for b in "${CONTAINERD_CMDS[@]}"; do binds+=("--bind-ro=$dir/$b:/usr/bin/$b"); done
  fi
  NA_DOCKER=false
  na_boot "$nlabel" "containerd $label, its default config.toml; docker masked" "${binds[@]}" \
    systemd.mask=docker.service systemd.mask=docker.socket || return
  local plugins=(io.containerd.grpc.v1.cri)
  [[ $label == 1.* ]] || plugins+=(io.containerd.cri.v1.images)
  check "containerd.service is active" node_wait_active containerd.service
  check "containerd answers on its socket" node_wait_socket
  if [ "$label" != 1.6 ]; then
    check "the node's containerd is $(ctrd_label_version "$label")" na_ctrd_version_is "$(ctrd_label_version "$label" | tr -d v)"
  else
    check "the node's containerd is Debian's 1.6" na_ctrd_is_debian16
  fi
  check "CRI plugins ok with the default config" node_plugins_ok "${plugins[@]}"
  check "before the sync registry.example.invalid is unreachable (no mirror, no route)" \
    na_pull_fails "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  node_journal_wait containerd.service Started 1

  if [ "$variant" = colon ] || ctrd_at_least "$label" 2.2; then
    # The bug mirrorctl works around (containerd issues 12415, 12636), measured: a hosts.toml
    # in the first directory of the list, for a name the spec does not use. (From 2.2 the
    # default's empty config_path means that list.)
    mkdir -p "$nd/etc-containerd/certs.d/colon.example.invalid"
    printf 'server = "https://colon.example.invalid"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$REG_OPEN" \
      >"$nd/etc-containerd/certs.d/colon.example.invalid/hosts.toml"
    local honoured=no
    na_pull "$REG_LOG_OPEN" colon.example.invalid "colon.example.invalid/$IMAGE_REPO:$IMAGE_TAG" >>"$SCEN_LOG" 2>&1 && honoured=yes
    info "MEASURE containerd=$label config_path=$(if [ "$variant" = colon ]; then echo "\"$COLON_CONFIG_PATH\""; else echo "default"; fi) (before mirrorctl): a hosts.toml in /etc/containerd/certs.d is honoured by a CRI pull: $honoured"
    rm -rf "$nd/etc-containerd/certs.d/colon.example.invalid"
  fi

  # ------------------------------------------------ sync: restart through systemd, health
  nm_spec "http://$REG_AUTH" >"$NA_SPEC"
  cp "$NA_SPEC" "$NA_D/spec-A.yaml"
  na_state
  local cpid0=$NA_CPID cstarts0=$NA_CSTARTS
  na_run sync-A --output json sync
  check "mirrorctl sync (credentials: auto): exit 0, so containerd passed mirrorctl's health check after the restart" \
    na_exit sync-A 0 || { node_shutdown; return; }
  check "activated: containerd restart (through systemd), nothing pending" na_activated sync-A "containerd:restart"
  check "mirrorctl logged containerd healthy" grep -E 'healthy.*engine=containerd' "$NA_D/sync-A.err"
  if [ "$variant" = colon ]; then
    check "mirrorctl warned that it replaced the config_path list" \
      grep -E "config_path [\\]?\"$COLON_CONFIG_PATH[\\]?\" is a list; .*mirrorctl set it to [\\]?\"/etc/containerd/certs.d[\\]?\"" "$NA_D/sync-A.err"
  fi
  check "containerd started exactly once more: journal" na_starts_now containerd.service $((cstarts0 + 1))
  na_state
  check "containerd has a new MainPID" na_ne "containerd MainPID" "$cpid0" "$NA_CPID"
  check "CRI plugins ok" node_plugins_ok "${plugins[@]}"
  check "containerd runs with config_path /etc/containerd/certs.d" na_ctrd_config_path_is "$label" /etc/containerd/certs.d
  node_sh /usr/bin/containerd config dump >"$NA_D/dump-after.toml" 2>/dev/null
  check "credentials: auto put them as '$creds' on $label, and nowhere else" \
    creds_where "$creds" "$NA_D/dump-after.toml" "$nd/etc-containerd/certs.d"
  check "crictl pull registry.example.invalid/... (no --creds) served by the auth mirror" \
    na_pull "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "crictl pull test:latest (docker.io, no --creds) served by the auth mirror" \
    na_pull "$REG_LOG_AUTH" docker.io test:latest
  if ctrd_at_least "$label" 2.1; then
    check "CRI pulls stay on the transfer service (no local-pull fallback)" node_no_local_pull
  fi

  # ------------------------------------------------ a hosts.toml-only change, live
  nm_spec "http://$REG_OPEN" >"$NA_SPEC"
  cp "$NA_SPEC" "$NA_D/spec-B.yaml"
  na_state; cpid0=$NA_CPID cstarts0=$NA_CSTARTS
  na_run sync-B --output json sync
  check "mirrorctl sync (registry.example.invalid -> $REG_OPEN)" na_exit sync-B 0 || { node_shutdown; return; }
  check "only certs.d/registry.example.invalid/hosts.toml written" \
    na_written sync-B /etc/containerd/certs.d/registry.example.invalid/hosts.toml
  check "nothing activated, nothing pending" na_activated sync-B ""
  na_state
  check "containerd not restarted: MainPID and \"Started\" lines unchanged" \
    na_eq "containerd MainPID/starts" "$cpid0/$cstarts0" "$NA_CPID/$NA_CSTARTS"
  check "the next crictl pull registry.example.invalid/... goes through the NEW mirror ($REG_OPEN)" \
    na_pull "$REG_LOG_OPEN" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "crictl pull test:latest still served by the auth mirror" na_pull "$REG_LOG_AUTH" docker.io test:latest
  na_run plan-B plan --exit-code
  check "mirrorctl plan --exit-code: nothing pending" na_exit plan-B 0
  node_shutdown
}
