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

# docker_common_setup 20|29: fresh state; for 29 also containerd 2.x started as its
# external containerd (daemon.json gets "containerd" from docker_daemon_base).
docker_common_setup() {
  local v=${1:-20} out
  CTRD_PID=
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return 1; }
  SCEN_FILES=(/etc/docker/daemon.json /root/.docker/config.json)
  if [ "$v" = 20 ]; then
    use_containerd 1.6 || { fail "use containerd 1.6 binaries for dockerd's managed containerd"; return 1; }
    use_dockerd 20 || { fail "Debian's dockerd 20.10 at /usr/sbin/dockerd"; return 1; }
    return 0
  fi
  out=$(use_containerd "$(ctrd_label "$CONTAINERD2_VERSION")" 2>&1 && use_dockerd 29 2>&1) ||
    { fail "dockerd $DOCKERD_RELEASE and containerd $CONTAINERD2_VERSION binaries ($out)"; return 1; }
  SCEN_FILES+=(/etc/docker/certs.d)
  printf 'version = 3\n' >/etc/containerd/config.toml
  ctrd_start || { fail "containerd $CONTAINERD2_VERSION starts (dockerd's external containerd)" "$CTRD_LOG"; return 1; }
}

# docker_daemon_base 20|29: what the scenario's daemon.json needs to run here (merged into
# the user's keys): dockerd 29 is pointed at the running containerd.
docker_daemon_base() {
  if [ "${1:-20}" = 20 ]; then echo '{}'; else jq -n --arg s "$CTRD_SOCK" '{containerd: $s}'; fi
}

docker_stop_all() { dockerd_stop; [ -z "$CTRD_PID" ] || ctrd_stop; }

sc_docker_handmade() {
  docker_common_setup || return
  docker_foreign_daemon_json | jq --arg m "http://$REG_OPEN" '. + {"registry-mirrors": [$m]}' >/etc/docker/daemon.json
  dockerd_start || { fail "dockerd starts with a hand-written registry-mirrors" "$DOCKERD_LOG"; return; }
  SCEN_LOGS=("$DOCKERD_LOG")
  check "docker info lists the mirror" docker_mirrors_are "[\"http://$REG_OPEN/\"]"
  check "docker pull $IMAGE_REPO:$IMAGE_TAG served by the mirror" docker_pull_via_mirror
  dockerd_stop
}

# sc_docker_sync [20|29]: with 29, the classic image store (set in the user's daemon.json).
sc_docker_sync() {
  local v=${1:-20} d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_} extra
  mkdir -p "$d"
  docker_common_setup "$v" || return
  extra=$(docker_daemon_base "$v")
  [ "$v" = 20 ] || extra=$(jq '. + {features: {"containerd-snapshotter": false}}' <<<"$extra")
  docker_foreign_daemon_json | jq --argjson x "$extra" '. + $x' >/etc/docker/daemon.json
  cp /etc/docker/daemon.json "$d/daemon.json.orig"
  # a user's client config with an entry of its own, which must survive
  printf '{\n  "auths": {\n    "other.example.invalid": {"auth": "b3RoZXI6dXNlcg=="}\n  },\n  "psFormat": "table {{.ID}}"\n}\n' >/root/.docker/config.json
  cp /root/.docker/config.json "$d/config.json.orig"

  docker_spec "http://$REG_OPEN" >"$d/spec1.yaml"
  check "mirrorctl sync --no-restart" mctl sync --config "$d/spec1.yaml" --no-restart || return
  check "daemon.json keys mirrorctl does not manage survived (values)" same_foreign_keys "$d/daemon.json.orig" /etc/docker/daemon.json
  dockerd_start || { fail "dockerd starts with the daemon.json mirrorctl wrote" "$DOCKERD_LOG"; docker_stop_all; return; }
  SCEN_LOGS=("$DOCKERD_LOG")
  if [ "$v" != 20 ]; then
    check "dockerd is $DOCKERD_RELEASE" docker_server_is "$DOCKERD_RELEASE"
    check "dockerd uses the classic image store (features.containerd-snapshotter false)" docker_store_is classic
  fi
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
  docker_stop_all
}

# ------------------------------------------------------------------ dockerd 29, containerd image store
# docker29_hosts_toml UPSTREAM MIRROR_URL [BASIC_B64]: the hosts.toml dockerd 29 reads for
# UPSTREAM (containerd's format; hand-written: what mirrorctl should write).
docker29_hosts_toml() {
  local server=https://$1
  [ "$1" = docker.io ] && server=https://registry-1.docker.io
  mkdir -p "/etc/docker/certs.d/$1"
  {
    printf 'server = "%s"\n\n[host."%s"]\n  capabilities = ["pull", "resolve"]\n' "$server" "$2"
    [ -z "${3:-}" ] || printf '  [host."%s".header]\n    Authorization = "Basic %s"\n' "$2" "$3"
  } >"/etc/docker/certs.d/$1/hosts.toml"
}

# hosts_toml_means FILE SERVER MIRROR_URL [AUTHORIZATION]: FILE, read as TOML (any layout),
# names SERVER (or none), exactly one mirror host MIRROR_URL that may pull and resolve, and,
# if given, sends that Authorization header to it (and no Authorization anywhere else).
hosts_toml_means() {
  [ -f "$1" ] || { echo "$1: absent"; ls -lR "${1%/*/*}" 2>&1 | head -n 20; return 1; }
  python3 - "$@" <<'PY'
import json, sys, tomllib
path, server, mirror = sys.argv[1:4]
auth = sys.argv[4] if len(sys.argv) > 4 else None
with open(path, "rb") as f:
    doc = tomllib.load(f)
print(path + ": " + json.dumps(doc))
# containerd's loader appends /v2 to a URL's path unless it already ends in /v2: a host
# written with /v2 and one without mean the same endpoint.
def norm(u):
    u = u.rstrip("/")
    return u[:-3] if u.endswith("/v2") else u
errs = []
if norm(doc.get("server", server)) != server:
    errs.append("server is %r, want %r" % (doc.get("server"), server))
hosts = {norm(k): v for k, v in doc.get("host", {}).items()}
if list(hosts) != [mirror]:
    errs.append("mirror hosts %s, want [%r]" % (list(hosts), mirror))
h = hosts.get(mirror, {})
caps = set(h.get("capabilities", ["pull", "resolve", "push"]))
if not {"pull", "resolve"} <= caps:
    errs.append("capabilities %s lack pull/resolve" % sorted(caps))
hdr = {k.lower(): v for k, v in h.get("header", {}).items()}
got = hdr.get("authorization")
if isinstance(got, list):
    got = got[0] if len(got) == 1 else got
if auth is not None and got != auth:
    errs.append("Authorization for %s is %r, want the spec's credentials" % (mirror, got))
if auth is None and got is not None:
    errs.append("Authorization for %s set, want none" % mirror)
if any(k.lower() == "authorization" for k in doc.get("header", {})):
    errs.append("a server-level Authorization header (it would go to the upstream too)")
for e in errs:
    print("  " + e)
sys.exit(1 if errs else 0)
PY
}

# docker29_spec REGISTRY_EXAMPLE_MIRROR: docker.io and registry.example.invalid through mirrors,
# the auth mirror's credentials; Docker only (its containerd is the harness's).
docker29_spec() {
  cat <<EOF
mirrors:
  docker.io:
    endpoint: ["http://$REG_AUTH"]
  registry.example.invalid:
    endpoint: ["$1"]
configs:
  "$REG_AUTH":
    auth:
      username: $REG_USER
      password_file: $PASS_FILE
engines:
  containerd: {enabled: false}
  docker: {enabled: true}
  k3s: {enabled: false}
  crictl: {enabled: false}
  containers: {enabled: false}
EOF
}

# docker29_detect SPEC: mirrorctl detect reports dockerd's version as DOCKERD_RELEASE.
docker29_detect() {
  local out
  out=$(mctl detect --config "$1" --output json) || { echo "$out"; return 1; }
  jq -c '.[] | select(.name == "docker") | {name, found, managed, version, reason}' <<<"$out" || { echo "$out"; return 1; }
  jq -e --arg v "$DOCKERD_RELEASE" '.[] | select(.name == "docker") | .version == $v' <<<"$out" >/dev/null
}

# d29_sync NAME SPEC: mirrorctl --output json sync --no-restart; output in $D29/NAME.{out,err,rc}.
d29_sync() {
  mctl --output json sync --config "$2" --no-restart >"$D29/$1.out" 2>"$D29/$1.err"
  echo $? >"$D29/$1.rc"
  printf '%s\n' "--- mirrorctl sync --config $2 (exit $(cat "$D29/$1.rc"))" >>"$SCEN_LOG"
  cat "$D29/$1.out" "$D29/$1.err" >>"$SCEN_LOG"
}
d29_exit0() { grep -v 'level=INFO' "$D29/$1.err"; [ "$(cat "$D29/$1.rc")" = 0 ]; }
# d29_only_written NAME PATH: the sync wrote exactly PATH and activates nothing.
d29_only_written() {
  jq -c '{written, activated, pending_activation}' "$D29/$1.out" || return 1
  jq -e --arg p "$2" '.written == [$p] and (.activated | length) == 0 and (.pending_activation | length) == 0' "$D29/$1.out" >/dev/null
}

# docker_not_reloaded PID: dockerd still runs as PID and was sent no SIGHUP.
docker_not_reloaded() {
  echo "dockerd pid $(cat /run/docker.pid 2>/dev/null), was $1"
  [ "$(cat /run/docker.pid 2>/dev/null)" = "$1" ] && kill -0 "$1" &&
    ! grep -q 'Got signal to reload configuration' "$DOCKERD_LOG"
}

# sc_docker29_store handmade|mirrorctl: dockerd 29 (containerd image store, containerd 2.x
# external) pulls a docker.io name and another registry's name through the auth mirror with
# the credentials only in hosts.toml, and a hosts.toml change is used by the next pull with
# no reload (dockerd's PID unchanged, no SIGHUP sent).
sc_docker29_store() {
  local writer=$1 auth pid0 f_hub=/etc/docker/certs.d/docker.io/hosts.toml f_reg=/etc/docker/certs.d/registry.example.invalid/hosts.toml
  D29=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  mkdir -p "$D29"
  auth="Basic $(basic_b64 "$REG_USER" "$REG_PASS")"
  docker_common_setup 29 || return
  # the user's daemon.json: no graph driver (that would select the classic store)
  docker_daemon_base 29 | jq '. + {iptables: false, ip6tables: false, bridge: "none", labels: ["e2e.foreign=kept"]}' >/etc/docker/daemon.json
  cp /etc/docker/daemon.json "$D29/daemon.json.orig"
  if [ "$writer" = handmade ]; then
    docker29_hosts_toml docker.io "http://$REG_AUTH" "$(basic_b64 "$REG_USER" "$REG_PASS")"
    docker29_hosts_toml registry.example.invalid "http://$REG_AUTH" "$(basic_b64 "$REG_USER" "$REG_PASS")"
  else
    # one spec path, as on a node: every file names it in its header
    docker29_spec "http://$REG_AUTH" >"$D29/spec.yaml"
    check "mirrorctl detect: docker $DOCKERD_RELEASE" docker29_detect "$D29/spec.yaml"
    d29_sync sync-A "$D29/spec.yaml"
    check "mirrorctl sync --no-restart (dockerd $DOCKERD_RELEASE, containerd image store)" d29_exit0 sync-A
    check "daemon.json keys mirrorctl does not manage survived" same_foreign_keys "$D29/daemon.json.orig" /etc/docker/daemon.json
  fi
  check "$f_hub: registry-1.docker.io through http://$REG_AUTH, credentials as its Authorization header" \
    hosts_toml_means "$f_hub" https://registry-1.docker.io "http://$REG_AUTH" "$auth"
  check "$f_reg: through http://$REG_AUTH, credentials as its Authorization header" \
    hosts_toml_means "$f_reg" https://registry.example.invalid "http://$REG_AUTH" "$auth"

  dockerd_start || { fail "dockerd $DOCKERD_RELEASE starts (external containerd $CONTAINERD2_VERSION)" "$DOCKERD_LOG"; docker_stop_all; return; }
  SCEN_LOGS=("$DOCKERD_LOG")
  check "dockerd is $DOCKERD_RELEASE" docker_server_is "$DOCKERD_RELEASE"
  check "dockerd uses the containerd image store (DriverStatus driver-type io.containerd.snapshotter.v1)" docker_store_is containerd
  check "docker pull $IMAGE_REPO:$IMAGE_TAG (docker.io, no docker login) served by the auth mirror (?ns=docker.io)" \
    docker_pull_via "$REG_LOG_AUTH" docker.io "$IMAGE_REPO:$IMAGE_TAG"
  check "docker pull registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG (no docker login) served by the auth mirror" \
    docker_pull_via "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"

  # a hosts.toml-only change: registry.example.invalid moves to the open registry
  pid0=$DOCKERD_PID
  if [ "$writer" = handmade ]; then
    docker29_hosts_toml registry.example.invalid "http://$REG_OPEN"
  else
    docker29_spec "http://$REG_OPEN" >"$D29/spec.yaml"
    d29_sync sync-B "$D29/spec.yaml"
    check "mirrorctl sync --no-restart (registry.example.invalid -> $REG_OPEN)" d29_exit0 sync-B
    check "it wrote only $f_reg and activates nothing (no reload needed)" d29_only_written sync-B "$f_reg"
  fi
  check "$f_reg now: through http://$REG_OPEN, no credentials" \
    hosts_toml_means "$f_reg" https://registry.example.invalid "http://$REG_OPEN"
  check "the next docker pull registry.example.invalid/... goes through the NEW mirror ($REG_OPEN), no reload" \
    docker_pull_via "$REG_LOG_OPEN" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "docker pull $IMAGE_REPO:$IMAGE_TAG still served by the auth mirror" \
    docker_pull_via "$REG_LOG_AUTH" docker.io "$IMAGE_REPO:$IMAGE_TAG"
  check "dockerd neither restarted nor reloaded (same PID, no SIGHUP)" docker_not_reloaded "$pid0"
  if [ "$writer" = mirrorctl ]; then
    check "mirrorctl plan --exit-code: nothing pending" mctl plan --config "$D29/spec.yaml" --exit-code
  fi
  docker_stop_all
}
