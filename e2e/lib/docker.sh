# shellcheck shell=bash
# dockerd on the sandboxed host, started by hand from /usr/sbin/dockerd with all defaults:
# /etc/docker/daemon.json, /var/lib/docker, /run/docker.sock, /run/docker.pid.
#   20  Debian's 20.10; its own managed containerd comes from /usr/bin/containerd (1.6).
#   29  dockerd 29 built from the moby module (use_dockerd 29 binds it over /usr/sbin/dockerd),
#       with containerd 2.x, started by the harness, as its external containerd (daemon.json
#       "containerd"); by default it keeps images in containerd (the containerd image store).
# The client is always Debian's docker 20.10 (API 1.41; dockerd 29 accepts 1.40 and later).

DOCKERD_PID=
docker_() { timeout 120 /usr/bin/docker "$@"; }   # Debian's client; /usr/local/bin/docker may be another version

dockerd_start() {
  DOCKERD_LOG=$E2E_LOGS/dockerd-${CURRENT_SCENARIO//\//_}.log
  local t i; t=$(now_ms)
  spawn dockerd "$DOCKERD_LOG" /usr/sbin/dockerd
  DOCKERD_PID=$LAST_PID
  for ((i = 0; i < 300; i++)); do
    if docker_ version >/dev/null 2>&1; then
      echo "dockerd ready in $(secs_since "$t") (pid $DOCKERD_PID)" >>"$SCEN_LOG"
      return 0
    fi
    alive "$DOCKERD_PID" || break
    sleep 0.1
  done
  return 1
}

dockerd_stop() { stop_pid "$DOCKERD_PID" TERM 20; DOCKERD_PID=; }

# docker_mirrors: the daemon's registry-mirrors as one JSON line, e.g. ["http://127.0.0.1:5001/"]
docker_mirrors() { docker_ info --format '{{json .RegistryConfig.Mirrors}}' 2>/dev/null; }

# docker_mirrors_are JSON: docker info lists exactly these mirrors (in order).
docker_mirrors_are() {
  local got; got=$(docker_mirrors)
  echo "docker info: registry mirrors $got"
  [ "$(jq -c . <<<"$got")" = "$(jq -c . <<<"$1")" ]
}

# foreign_keys FILE: daemon.json without the keys mirrorctl manages, canonical.
foreign_keys() { jq -S 'del(."registry-mirrors", ."insecure-registries")' "$1"; }

# same_foreign_keys BEFORE AFTER
same_foreign_keys() {
  local d
  d=$(diff -u <(foreign_keys "$1") <(foreign_keys "$2")) && return 0
  echo "keys mirrorctl does not manage changed:"; echo "$d"; return 1
}

# docker_pull_via_mirror: docker pull library/test (a Docker Hub name) is served by the
# open registry, which is only reachable as the docker.io mirror.
docker_pull_via_mirror() {
  local mark out
  docker_ rmi -f "$IMAGE_REPO:$IMAGE_TAG" >/dev/null 2>&1
  mark=$(log_mark "$REG_LOG_OPEN")
  out=$(docker_ pull "$IMAGE_REPO:$IMAGE_TAG" 2>&1) || { echo "$out"; return 1; }
  echo "$out" | tail -n 2
  served_docker "$REG_LOG_OPEN" "$mark" || { echo "pulled, but $REG_LOG_OPEN shows no request from dockerd"; return 1; }
}

# docker_store: the image store dockerd uses: "containerd" (DriverStatus driver-type
# io.containerd.snapshotter.v1) or "classic" (a graph driver such as overlay2).
docker_store() {
  local ds
  ds=$(docker_ info --format '{{json .DriverStatus}}') || return 1
  echo "docker info: Driver $(docker_ info --format '{{.Driver}}'), DriverStatus $ds" >&2
  if jq -e 'any(.[]; .[0] == "driver-type" and .[1] == "io.containerd.snapshotter.v1")' <<<"$ds" >/dev/null; then
    echo containerd
  else
    echo classic
  fi
}
docker_store_is() { local got; got=$(docker_store) || return 1; echo "image store: $got"; [ "$got" = "$1" ]; }

# docker_server_is VERSION: the daemon reports this release (docker version).
docker_server_is() {
  local v
  v=$(docker_ version --format '{{.Server.Version}} (API {{.Server.APIVersion}}, minimum {{.Server.MinAPIVersion}}; client API {{.Client.APIVersion}})') || return 1
  echo "dockerd $v"
  [[ $v == "$1 "* ]]
}

# docker_pull_via LOG NS REF: docker pull REF (no docker login for the mirror) is served by
# the registry writing LOG as a mirror for upstream NS: a 200 for the manifest with ?ns=NS
# (containerd's resolver, which dockerd uses with the containerd image store, adds it on
# mirror hosts) to dockerd's user agent.
docker_pull_via() {
  local logf=$1 ns=$2 ref=$3 mark out
  docker_ rmi -f "$ref" >/dev/null 2>&1
  mark=$(log_mark "$logf")
  out=$(docker_ pull "$ref" 2>&1) || { echo "$out"; return 1; }
  echo "$out" | tail -n 2
  log_since "$logf" "$mark" | grep -E "\"(GET|HEAD) /v2/$IMAGE_REPO/manifests/[^ ]*[?&]ns=$ns HTTP/1\\.1\" 200" | grep '"docker/' >/dev/null || {
    echo "pulled, but $logf shows no manifest request with ?ns=$ns from dockerd since the pull:"
    log_since "$logf" "$mark" | tail -n 6
    return 1
  }
}
