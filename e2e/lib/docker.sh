# shellcheck shell=bash
# dockerd 20.10 (Debian) on the sandboxed host, started by hand with all defaults:
# /etc/docker/daemon.json, /var/lib/docker, /run/docker.sock, /run/docker.pid. Its own
# managed containerd comes from /usr/bin/containerd: run it with use_containerd 1.6.

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
