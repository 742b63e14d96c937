# shellcheck shell=bash
# Issue 14: a token-auth registry, real pulls through it with mirrorctl's files, and
# `mirrorctl doctor` against real faults (lib/tokenauth.sh has the registries).
#
#   token/containerd-V-CREDS  containerd 1.6 / 2.x, credentials in config.toml (config) or as
#                             a hosts.toml header (header), pulling through the token registry;
#                             MEASURE lines give the Bearer column of the README's table
#   token/docker              dockerd 20.10: a direct pull with config.json credentials, a Hub
#                             mirror with anonymous pull, and one without (dockerd sends mirrors
#                             no credentials)
#   doctor/faults             one registry per fault, through containerd 2.x's files as sync
#                             writes them: doctor names each cause and its fix, exit 1
#   doctor/ok                 all is well: OK with the right URL list for containerd 1.6 and 2.x,
#                             dockerd and k3s, exit 0; a restart and a reload still owed are
#                             named, and gone once done

# token_spec CREDS MIRROR [KEY]: registry.example.invalid and docker.io through MIRROR, the
# test user's credentials for KEY (default: the mirror itself).
token_spec() {
  cat <<EOF
mirrors:
  registry.example.invalid:
    endpoint: ["http://$2"]
  docker.io:
    endpoint: ["http://$2"]
configs:
  "${3:-$2}":
    auth:
      username: $REG_USER
      password_file: $PASS_FILE
EOF
  spec_engines true false false false "$1"
}

# doctor_json ARGS...: mirrorctl doctor -o json; its exit status is the function's.
doctor_json() { mctl doctor -o json "$@"; }

# verdict FILE ENGINE REGISTRY: "LEVEL CAUSE VIA" of an engine's verdict for a registry.
verdict() {
  jq -r --arg e "$2" --arg r "$3" '.engines[] | select(.engine == $e) | .images[] | select(.image.registry == $r) |
    "\(.level | ascii_upcase) \(.cause // "-") \(.via // "-")"' "$1"
}

# verdict_is FILE ENGINE REGISTRY LEVEL CAUSE [TEXT GREP]: the verdict has this level and cause
# ("-" for none), and the text report TEXT holds GREP (a fixed string).
verdict_is() {
  local got; got=$(verdict "$1" "$2" "$3")
  echo "$2 $3: $got"
  jq -r --arg e "$2" --arg r "$3" '.engines[] | select(.engine == $e) | .images[] | select(.image.registry == $r) |
    "  summary: \(.summary)", "  fix: \(.fix // "-")"' "$1"
  [ "$(cut -d' ' -f1-2 <<<"$got")" = "$4 $5" ] || return 1
  [ -z "${6:-}" ] || grep -qF -- "$7" "$6" || { echo "the text report lacks: $7"; return 1; }
}

# ok_via FILE RC ENGINE REGISTRY URL: doctor exited 0 and the engine pulls through URL.
ok_via() {
  local got; got=$(verdict "$1" "$3" "$4")
  echo "exit $2; $3 $4: $got"
  [ "$2" = 0 ] && [ "$got" = "OK - $5" ]
}

# state_has FILE ENGINE CAUSE...: the engine's state findings include every CAUSE.
state_has() {
  local f=$1 e=$2 c got; shift 2
  got=$(jq -r --arg e "$e" '.engines[] | select(.engine == $e) | .state[] | "\(.level) \(.cause): \(.message)"' "$f")
  echo "$got"
  for c in "$@"; do grep -q "^[a-z]* $c:" <<<"$got" || { echo "missing: $c"; return 1; }; done
}

# push_refused FILE REGISTRY: the first try of containerd for REGISTRY names push_refused.
push_refused() {
  jq -e --arg r "$2" '.engines[] | select(.engine == "containerd") | .images[] | select(.image.registry == $r) |
    .tries[0].push.cause == "push_refused"' "$1"
}

# token_user_served MARK: the token service issued $REG_USER a token since MARK.
token_user_served() { token_requests_since "$1" | grep "GET /token $REG_USER: 200"; }

# routes_are FILE ENGINE REGISTRY URL...: the engine tries exactly these URLs, in order.
routes_are() {
  local f=$1 e=$2 r=$3 got want; shift 3
  got=$(jq -c --arg e "$e" --arg r "$r" '[.engines[] | select(.engine == $e) | .images[] | select(.image.registry == $r) | .routes[].url]' "$f")
  want=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
  echo "$e $r: routes $got"
  [ "$got" = "$want" ] || { echo "want $want"; return 1; }
}

# no_secret FILE...: no form of the test password is in the files.
no_secret() {
  local f b64
  b64=$(basic_b64 "$REG_USER" "$REG_PASS")
  for f in "$@"; do
    if grep -F -e "$REG_PASS" -e "$b64" -e 'ss $wörd' "$f" >/dev/null; then echo "$f shows the password"; return 1; fi
  done
}

# token_pull_via REF NS: crictl pull REF (no --creds) is served by the token registry for NS.
token_pull_via() {
  local mark out
  mark=$(log_mark "$REG_LOG_TOKEN")
  out=$(cri pull "$1" 2>&1) || { echo "$out"; return 1; }
  echo "$out"
  served_ns "$REG_LOG_TOKEN" "$mark" "$2" || { echo "pulled, but $REG_LOG_TOKEN shows no manifest served for ns=$2"; return 1; }
}

sc_token_containerd() {
  local version=$1 creds=$2 d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  mkdir -p "$d"
  use_containerd "$version" || { fail "use containerd $version binaries"; return; }
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return; }
  SCEN_FILES=(/etc/containerd)
  containerd_baseline_config "$version" >/etc/containerd/config.toml
  ctrd_start || { fail "containerd $version starts" "$CTRD_LOG"; return; }
  SCEN_LOGS=("$CTRD_LOG" "$TOKEN_LOG" "$REG_LOG_TOKEN")
  token_spec "$creds" "$TOKEN_REG" >"$d/spec.yaml"
  check "mirrorctl sync --no-restart (credentials: $creds)" mctl sync --config "$d/spec.yaml" --no-restart || return
  ctrd_restart || { fail "containerd $version restarts" "$CTRD_LOG"; return; }
  check "CRI plugins report ok after the restart" ctrd_plugins_ok

  local tmark rmark ok=0 expect=works
  [ "$version" = 1.6 ] && [ "$creds" = header ] && expect=fails
  tmark=$(log_mark "$TOKEN_LOG")
  rmark=$(log_mark "$REG_LOG_TOKEN")
  if [ $expect = works ]; then
    check "crictl pull registry.example.invalid/... (no --creds) served by the token registry" \
      token_pull_via "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG" registry.example.invalid && ok=$((ok + 1))
    check "crictl pull test:latest (docker.io, no --creds) served by the token registry" \
      token_pull_via "$IMAGE_REPO:$IMAGE_TAG" docker.io && ok=$((ok + 1))
  else
    # Measured (README, "containerd credentials"): 1.6 sends hosts.toml headers to the registry but not to
    # the token realm; the realm's anonymous token grants nothing; the pull fails.
    check "crictl pull registry.example.invalid/... fails on 1.6 with the header alone (insufficient scope)" \
      cri_pull_fails "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  fi
  local reqs get_user post_user anon n401
  reqs=$(token_requests_since "$tmark")
  get_user=$(grep -c "GET /token $REG_USER: 200" <<<"$reqs")
  post_user=$(grep -c "POST /token $REG_USER: 200" <<<"$reqs")
  anon=$(grep -c 'anonymous: 200' <<<"$reqs")
  n401=$(log_since "$REG_LOG_TOKEN" "$rmark" | grep -c '^127.* 401 ')
  local fallback=n/a
  if [ "$version" != 1.6 ]; then
    fallback=$(log_since "$CTRD_LOG" "$CTRD_MARK" | grep -c 'Falling back to local image pull mode')
  fi
  info "MEASURE bearer containerd=$version credentials=$creds pulls_ok=$ok/2 token_get_with_user=$get_user token_post_with_user=$post_user token_anonymous=$anon registry_401s=$n401 local_pull_fallback_warnings=$fallback"

  doctor_json --config "$d/spec.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/doctor.json" 2>"$d/doctor.err"
  local rc=$?
  mctl doctor --config "$d/spec.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/doctor.txt" 2>&1
  if [ $expect = works ]; then
    check "doctor: OK through http://$TOKEN_REG/v2 for docker.io, exit 0" ok_via "$d/doctor.json" "$rc" containerd docker.io "http://$TOKEN_REG/v2" &&
      check "doctor: OK through http://$TOKEN_REG/v2 for registry.example.invalid" \
        ok_via "$d/doctor.json" "$rc" containerd registry.example.invalid "http://$TOKEN_REG/v2" ||
      sed 's/^/      | /' "$d/doctor.txt" | head -n 40
  else
    check "doctor exits 1" test "$rc" = 1
    check "doctor names it: header_not_sent_to_realm, fix engines.containerd.credentials: config" \
      verdict_is "$d/doctor.json" containerd docker.io FAIL header_not_sent_to_realm "$d/doctor.txt" 'engines.containerd.credentials: config' ||
      sed 's/^/      | /' "$d/doctor.txt" | head -n 40
  fi
  check "doctor's output holds no form of the password" no_secret "$d/doctor.json" "$d/doctor.txt" "$d/doctor.err"
  ctrd_stop
}

sc_token_docker() {
  local d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  mkdir -p "$d"
  docker_common_setup || return
  docker_foreign_daemon_json >/etc/docker/daemon.json
  # docker.io through the registry that lets anonymous pull; the token registry's own
  # credentials for direct pulls, in root's config.json.
  cat >"$d/spec.yaml" <<EOF
mirrors:
  docker.io:
    endpoint: ["http://$TOKEN_REG_ANON"]
configs:
  "$TOKEN_REG":
    auth:
      username: $REG_USER
      password_file: $PASS_FILE
engines:
  containerd: {enabled: false}
  docker: {enabled: true, auth_users: [root]}
  k3s: {enabled: false}
  crictl: {enabled: false}
EOF
  check "mirrorctl sync --no-restart" mctl sync --config "$d/spec.yaml" --no-restart || return
  dockerd_start || { fail "dockerd starts" "$DOCKERD_LOG"; return; }
  SCEN_LOGS=("$DOCKERD_LOG" "$TOKEN_LOG")
  local tmark mark ok_direct=no ok_anon=no ok_creds=no
  tmark=$(log_mark "$TOKEN_LOG")
  check "docker pull $TOKEN_REG/$IMAGE_REPO:$IMAGE_TAG with the credentials mirrorctl put in config.json (token realm, GET with Basic)" \
    docker_ pull "$TOKEN_REG/$IMAGE_REPO:$IMAGE_TAG" && ok_direct=yes
  check "the token service issued the token to $REG_USER" token_user_served "$tmark"
  docker_ rmi -f "$IMAGE_REPO:$IMAGE_TAG" >/dev/null 2>&1
  mark=$(log_mark "$REG_LOG_TOKEN_ANON")
  check "docker pull $IMAGE_REPO:$IMAGE_TAG through the Hub mirror $TOKEN_REG_ANON (anonymous token allows pull)" \
    docker_ pull "$IMAGE_REPO:$IMAGE_TAG" && ok_anon=yes
  doctor_json --config "$d/spec.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/doctor-anon.json" 2>/dev/null
  check "doctor: docker OK through http://$TOKEN_REG_ANON/v2" verdict_is "$d/doctor-anon.json" docker docker.io OK -

  # The same mirror, but one whose realm gives anonymous requests nothing: dockerd sends a
  # mirror no credentials of its own, so it cannot pull, though the spec has them.
  sed -i "s|\"http://$TOKEN_REG_ANON\"|\"http://$TOKEN_REG\"|" "$d/spec.yaml"
  check "mirrorctl sync --no-restart (Hub mirror: the token registry)" mctl sync --config "$d/spec.yaml" --no-restart || return
  kill -HUP "$DOCKERD_PID"
  check "dockerd reloaded: docker info lists the token registry as its mirror" \
    wait_until 10 docker_mirrors_are "[\"http://$TOKEN_REG/\"]" || return
  docker_ rmi -f "$IMAGE_REPO:$IMAGE_TAG" >/dev/null 2>&1
  if docker_ pull "$IMAGE_REPO:$IMAGE_TAG" >"$d/pull-creds.out" 2>&1; then ok_creds=yes; fi
  check "docker pull $IMAGE_REPO:$IMAGE_TAG fails: dockerd sends the mirror no credentials (as measured: $ok_creds)" test "$ok_creds" = no
  doctor_json --config "$d/spec.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/doctor.json" 2>/dev/null
  mctl doctor --config "$d/spec.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/doctor.txt" 2>&1
  check "doctor names it: credentials_not_sent, and that the spec's credentials work" \
    verdict_is "$d/doctor.json" docker docker.io FAIL credentials_not_sent "$d/doctor.txt" 'it works' ||
    sed 's/^/      | /' "$d/doctor.txt" | head -n 30
  check "doctor's output holds no form of the password" no_secret "$d/doctor.json" "$d/doctor.txt"
  info "MEASURE bearer dockerd=20.10 direct_pull_config_json=$ok_direct hub_mirror_anonymous_pull=$ok_anon hub_mirror_needing_credentials=$ok_creds"
  dockerd_stop
}

# doctor_fault_spec: one registry per fault, each with its own mirror.
doctor_fault_spec() {
  cat <<EOF
mirrors:
  docker.io:
    endpoint: ["http://$NEXUS/repository/hub/v2"]
  nexus-no-v2.example.invalid:
    endpoint: ["http://$NEXUS/repository/hub"]
  webui.example.invalid:
    endpoint: ["http://$WEBUI"]
  wrong-password.example.invalid:
    endpoint: ["http://$REG_AUTH"]
  anonymous-off.example.invalid:
    endpoint: ["http://$TOKEN_REG_DENY"]
  wrong-ca.example.invalid:
    endpoint: ["https://$TLS_REG"]
  closed-port.example.invalid:
    endpoint: ["http://$CLOSED"]
  group.example.invalid:
    endpoint: ["http://$NEXUS/repository/group/v2"]
    capabilities: [pull, resolve, push]
  token.example.invalid:
    endpoint: ["http://$TOKEN_REG"]
configs:
  "$REG_AUTH":
    auth: {username: $REG_USER, password: not-the-password}
  "$TLS_REG":
    tls: {ca_file: $E2E_WORK/certs/other-ca.crt}
  "$TOKEN_REG":
    auth: {username: $REG_USER, password_file: $PASS_FILE}
EOF
  spec_engines true false false false
}

sc_doctor_faults() {
  local v=$C2_LABEL d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  mkdir -p "$d"
  use_containerd "$v" || { fail "use containerd $v binaries"; return; }
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return; }
  SCEN_FILES=(/etc/containerd)
  containerd_baseline_config "$v" >/etc/containerd/config.toml
  doctor_fault_spec >"$d/spec.yaml"
  check "mirrorctl sync --no-restart (one registry per fault)" mctl sync --config "$d/spec.yaml" --no-restart || return
  ctrd_start || { fail "containerd $v starts" "$CTRD_LOG"; return; }
  SCEN_LOGS=("$CTRD_LOG")
  doctor_json --config "$d/spec.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/doctor.json" 2>"$d/doctor.err"
  local rc=$?
  mctl doctor --config "$d/spec.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/doctor.txt" 2>&1
  check "doctor exits 1 (not every pull goes through a mirror)" test "$rc" = 1
  local f=$d/doctor.json
  local t=$d/doctor.txt
  check "Nexus stand-in with /v2: OK" verdict_is "$f" containerd docker.io OK -
  check "Nexus path without /v2: missing_v2 (fix: end the endpoint in /v2)" \
    verdict_is "$f" containerd nexus-no-v2.example.invalid FAIL missing_v2 "$t" "end the endpoint in /v2 (http://$NEXUS/repository/hub/v2)"
  check "a path that answers HTML: html_page" verdict_is "$f" containerd webui.example.invalid FAIL html_page
  check "a wrong password: wrong_credentials (Basic)" verdict_is "$f" containerd wrong-password.example.invalid FAIL wrong_credentials
  check "a Bearer realm with anonymous access off, no credentials: anonymous_pull_off" \
    verdict_is "$f" containerd anonymous-off.example.invalid FAIL anonymous_pull_off "$t" 'Docker Bearer Token Realm'
  check "a wrong CA: unknown_authority (fix: ca_file)" \
    verdict_is "$f" containerd wrong-ca.example.invalid FAIL unknown_authority "$t" "configs.\"$TLS_REG\".tls.ca_file"
  check "a closed port: refused, and the pull falls back to the upstream" \
    verdict_is "$f" containerd closed-port.example.invalid FAIL refused "$t" 'falls back to https://closed-port.example.invalid/v2'
  check "a group repository that refuses pushes: pull OK" verdict_is "$f" containerd group.example.invalid OK - "$t" 'PRO-licensed'
  check "a group repository that refuses pushes: push_refused on its route" push_refused "$f" group.example.invalid
  check "the token registry with the right credentials: OK" verdict_is "$f" containerd token.example.invalid OK -
  check "doctor's output holds no form of the password" no_secret "$f" "$d/doctor.txt" "$d/doctor.err"
  cat "$d/doctor.txt" >>"$SCEN_LOG"
  ctrd_stop
}

sc_doctor_ok() {
  local v d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  mkdir -p "$d"
  for v in 1.6 "$C2_LABEL"; do
    use_containerd "$v" || { fail "use containerd $v binaries"; return; }
    fresh_state "${CURRENT_SCENARIO//\//_}-$v" || { fail "fresh node state"; return; }
    SCEN_FILES=(/etc/containerd)
    containerd_baseline_config "$v" >/etc/containerd/config.toml
    ctrd_start || { fail "containerd $v starts" "$CTRD_LOG"; return; }
    SCEN_LOGS=("$CTRD_LOG")
    token_spec auto "$TOKEN_REG" >"$d/spec-$v.yaml"
    check "containerd $v: mirrorctl sync --no-restart" mctl sync --config "$d/spec-$v.yaml" --no-restart || return
    doctor_json --config "$d/spec-$v.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/pending-$v.json" 2>/dev/null
    check "containerd $v: before the restart doctor names the restart owed (pending_restart, owed_activation)" \
      state_has "$d/pending-$v.json" containerd pending_restart owed_activation
    check "containerd $v: ... and reports not OK" jq -e '.ok == false' "$d/pending-$v.json"
    ctrd_restart || { fail "containerd $v restarts" "$CTRD_LOG"; return; }
    doctor_json --config "$d/spec-$v.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/ok-$v.json" 2>/dev/null
    local rc=$?
    check "containerd $v: after the restart doctor OK, exit 0" ok_via "$d/ok-$v.json" "$rc" containerd docker.io "http://$TOKEN_REG/v2" ||
      mctl doctor --config "$d/spec-$v.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" 2>&1 | sed 's/^/      | /' | head -n 30
    check "containerd $v: routes for docker.io: the mirror, then Docker Hub" \
      routes_are "$d/ok-$v.json" containerd docker.io "http://$TOKEN_REG/v2" https://registry-1.docker.io/v2
    check "containerd $v: routes for registry.example.invalid: the mirror, then the registry" \
      routes_are "$d/ok-$v.json" containerd registry.example.invalid "http://$TOKEN_REG/v2" https://registry.example.invalid/v2
    ctrd_stop
  done

  # dockerd: a Hub mirror that allows anonymous pull; a reload owed, then done.
  docker_common_setup || return
  docker_foreign_daemon_json | jq --arg m "http://$REG_OPEN" '. + {"registry-mirrors": [$m]}' >/etc/docker/daemon.json
  dockerd_start || { fail "dockerd starts" "$DOCKERD_LOG"; return; }
  SCEN_LOGS=("$DOCKERD_LOG")
  printf 'mirrors:\n  docker.io:\n    endpoint: ["http://%s"]\n' "$TOKEN_REG_ANON" >"$d/spec-docker.yaml"
  printf 'engines:\n  containerd: {enabled: false}\n  docker: {enabled: true}\n  k3s: {enabled: false}\n  crictl: {enabled: false}\n' >>"$d/spec-docker.yaml"
  check "dockerd: mirrorctl sync --no-restart" mctl sync --config "$d/spec-docker.yaml" --no-restart || return
  doctor_json --config "$d/spec-docker.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/pending-docker.json" 2>/dev/null
  check "dockerd: before SIGHUP doctor names the reload owed (pending_reload)" state_has "$d/pending-docker.json" docker pending_reload
  kill -HUP "$DOCKERD_PID"
  check "dockerd reloaded: docker info lists the anonymous token registry as its mirror" \
    wait_until 10 docker_mirrors_are "[\"http://$TOKEN_REG_ANON/\"]" || return
  doctor_json --config "$d/spec-docker.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/ok-docker.json" 2>/dev/null
  rc=$?
  check "dockerd: after SIGHUP doctor OK, exit 0" ok_via "$d/ok-docker.json" "$rc" docker docker.io "http://$TOKEN_REG_ANON/v2" ||
    mctl doctor --config "$d/spec-docker.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" 2>&1 | sed 's/^/      | /' | head -n 30
  check "dockerd: routes for docker.io: the mirror, then Docker Hub" \
    routes_are "$d/ok-docker.json" docker docker.io "http://$TOKEN_REG_ANON/v2" https://registry-1.docker.io/v2
  dockerd_stop

  # k3s: its registries.yaml, read with k3s's rules (k3s itself does not run here).
  fresh_state "${CURRENT_SCENARIO//\//_}-k3s" || { fail "fresh node state"; return; }
  { token_spec auto "$TOKEN_REG" | sed '/^engines:/,$d'; spec_engines false false true false; } >"$d/spec-k3s.yaml"
  check "k3s: mirrorctl sync --no-restart" mctl sync --config "$d/spec-k3s.yaml" --no-restart || return
  doctor_json --config "$d/spec-k3s.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" >"$d/ok-k3s.json" 2>/dev/null
  rc=$?
  check "k3s: doctor OK, exit 0" ok_via "$d/ok-k3s.json" "$rc" k3s registry.example.invalid "http://$TOKEN_REG/v2" ||
    mctl doctor --config "$d/spec-k3s.yaml" --repository "$IMAGE_REPO:$IMAGE_TAG" 2>&1 | sed 's/^/      | /' | head -n 30
  check "k3s: routes for registry.example.invalid: the mirror, then the registry" \
    routes_are "$d/ok-k3s.json" k3s registry.example.invalid "http://$TOKEN_REG/v2" https://registry.example.invalid/v2
  check "k3s: the mirror gets configs.\"$TOKEN_REG\" (registries.yaml), also at the token realm" jq -e --arg k "$TOKEN_REG" \
    '.engines[] | select(.engine == "k3s") | .images[] | select(.image.registry == "registry.example.invalid") | .routes[0].auth | .key == $k and .token_realm' "$d/ok-k3s.json"
}
