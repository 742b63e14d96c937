# shellcheck shell=bash
# containerd scenarios, for 1.6 (Debian) and the built 2.x, on the sandboxed host.
#
#   containerd-V/handmade-CREDS   the harness's own proof: hand-written config.toml and
#                                 hosts.toml (what mirrorctl should write) work on this engine
#   containerd-V/sync-CREDS       mirrorctl sync writes them; the engine pulls through the mirror
#   containerd-V/legacy           a config.toml with registry.mirrors is migrated by sync
# CREDS is config (config.toml registry.configs auth) or header (hosts.toml Authorization).

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

# creds_where CREDS DUMP: the credentials are where the spec asked, and only there:
# in containerd's own view of config.toml (configs."<mirror>".auth), or as an
# Authorization header in certs.d.
creds_where() {
  local in_config=no in_hosts=no
  grep -E -A6 "registry\.configs\.['\"]${REG_AUTH}['\"]\.auth\]" "$2" |
    grep -E "^[[:space:]]*(username|auth|password) = ['\"][^'\"]" >/dev/null && in_config=yes
  grep -rsi '^[[:space:]]*authorization' /etc/containerd/certs.d >/dev/null && in_hosts=yes
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
  if [ "$version" != 1.6 ]; then
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
  ctrd_stop
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
