# shellcheck shell=bash
# dockerd scenarios.
#   docker/handmade  the harness's own proof: a hand-written registry-mirrors works
#   docker/sync      mirrorctl sync keeps foreign keys, sets the docker.io mirror; dockerd
#                    starts with it and pulls through it; a spec change reaches the running
#                    dockerd by SIGHUP (PID unchanged); config.json gets the credentials.
# dockerd sends no credentials to mirrors, so the docker.io mirror is the open registry.

# A daemon.json a user wrote: keys mirrorctl must keep (values compared after parsing).
# iptables/bridge are off because the sandbox has no bridge; they are foreign keys too.
docker_foreign_daemon_json() {
  cat <<'EOF'
{
  "iptables": false,
  "ip6tables": false,
  "bridge": "none",
  "storage-driver": "overlay2",
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "3"},
  "max-concurrent-downloads": 3,
  "shutdown-timeout": 15,
  "labels": ["e2e.foreign=<kept> & \"quoted\" ünïcode"]
}
EOF
}

docker_spec() {  # docker_spec MIRROR_URL...
  local u
  printf 'mirrors:\n  docker.io:\n    endpoint:\n'
  for u in "$@"; do printf '      - "%s"\n' "$u"; done
  cat <<EOF
configs:
  "$REG_AUTH":
    auth:
      username: $REG_USER
      password_file: $PASS_FILE
EOF
  printf 'engines:\n  containerd: {enabled: false}\n  docker: {enabled: true, auth_users: [root]}\n'
  printf '  k3s: {enabled: false}\n  crictl: {enabled: false}\n'
}

docker_common_setup() {
  use_containerd 1.6 || { fail "use containerd 1.6 binaries for dockerd's managed containerd"; return 1; }
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return 1; }
  SCEN_FILES=(/etc/docker/daemon.json /root/.docker/config.json)
}

sc_docker_handmade() {
  docker_common_setup || return
  docker_foreign_daemon_json | jq --arg m "http://$REG_OPEN" '. + {"registry-mirrors": [$m]}' >/etc/docker/daemon.json
  dockerd_start || { fail "dockerd starts with a hand-written registry-mirrors" "$DOCKERD_LOG"; return; }
  SCEN_LOGS=("$DOCKERD_LOG")
  check "docker info lists the mirror" docker_mirrors_are "[\"http://$REG_OPEN/\"]"
  check "docker pull $IMAGE_REPO:$IMAGE_TAG served by the mirror" docker_pull_via_mirror
  dockerd_stop
}

sc_docker_sync() {
  local d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  mkdir -p "$d"
  docker_common_setup || return
  docker_foreign_daemon_json >/etc/docker/daemon.json
  cp /etc/docker/daemon.json "$d/daemon.json.orig"
  # a user's client config with an entry of its own, which must survive
  printf '{\n  "auths": {\n    "other.example.invalid": {"auth": "b3RoZXI6dXNlcg=="}\n  },\n  "psFormat": "table {{.ID}}"\n}\n' >/root/.docker/config.json
  cp /root/.docker/config.json "$d/config.json.orig"

  docker_spec "http://$REG_OPEN" >"$d/spec1.yaml"
  check "mirrorctl sync --no-restart" mctl sync --config "$d/spec1.yaml" --no-restart || return
  check "daemon.json keys mirrorctl does not manage survived (values)" same_foreign_keys "$d/daemon.json.orig" /etc/docker/daemon.json
  dockerd_start || { fail "dockerd starts with the daemon.json mirrorctl wrote" "$DOCKERD_LOG"; return; }
  SCEN_LOGS=("$DOCKERD_LOG")
  check "docker info lists the mirror" docker_mirrors_are "[\"http://$REG_OPEN/\"]"
  check "docker pull $IMAGE_REPO:$IMAGE_TAG served by the mirror" docker_pull_via_mirror
  check "/root/.docker/config.json kept its own entries" \
    jq -e '.auths."other.example.invalid".auth == "b3RoZXI6dXNlcg==" and .psFormat == "table {{.ID}}"' /root/.docker/config.json
  check "docker pull $REG_AUTH/$IMAGE_REPO:$IMAGE_TAG with the credentials mirrorctl put in config.json" \
    docker_ pull "$REG_AUTH/$IMAGE_REPO:$IMAGE_TAG"

  # A spec change reaches the running dockerd by a reload (SIGHUP), not a restart.
  local pid_before; pid_before=$(cat /run/docker.pid 2>/dev/null)
  docker_spec "http://$REG_OPEN" "http://$REG_AUTH" >"$d/spec2.yaml"
  check "mirrorctl sync --no-restart (second mirror added)" mctl sync --config "$d/spec2.yaml" --no-restart || return
  kill -HUP "$DOCKERD_PID"
  wait_until 10 docker_mirrors_are "[\"http://$REG_OPEN/\",\"http://$REG_AUTH/\"]"
  check "after SIGHUP docker info lists both mirrors, in order" docker_mirrors_are "[\"http://$REG_OPEN/\",\"http://$REG_AUTH/\"]"
  check "dockerd was reloaded, not restarted (PID $DOCKERD_PID unchanged)" \
    bash -c "[ '$pid_before' = '$DOCKERD_PID' ] && [ \"\$(cat /run/docker.pid)\" = '$DOCKERD_PID' ] && kill -0 '$DOCKERD_PID'"
  check "daemon.json keys mirrorctl does not manage survived the second sync" same_foreign_keys "$d/daemon.json.orig" /etc/docker/daemon.json
  check "docker pull $IMAGE_REPO:$IMAGE_TAG still served by the first mirror" docker_pull_via_mirror
  check "mirrorctl plan --exit-code: nothing pending after the sync (idempotent)" \
    mctl plan --config "$d/spec2.yaml" --exit-code
  dockerd_stop
}
