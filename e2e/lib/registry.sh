# shellcheck shell=bash
# The mirror: Debian's docker-registry (CNCF distribution 2.8) twice, on 127.0.0.1:5000
# with htpasswd (bcrypt) auth and on 127.0.0.1:5001 without auth, both holding
# library/test:latest, a ~1 MB runnable image made offline from busybox-static with crane.

REG_USER=testuser
# Breaks naive encoders on purpose: ':' (user:pass split), '$' (shell), space, non-ASCII,
# '#' (TOML/YAML comment), '"' and '\' (string escapes). Stored in a file with one
# trailing newline, which the spec's password_file must trim.
REG_PASS='pa:ss $wörd #"\end'
REG_AUTH=127.0.0.1:5000
REG_OPEN=127.0.0.1:5001
IMAGE_REPO=library/test
IMAGE_TAG=latest

registry_config() {  # registry_config NAME ADDR [AUTH]
  local dir=$E2E_WORK/registry/$1
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $2
  secret: e2e-not-a-secret
EOF
  if [ -n "${3:-}" ]; then
    cat >>"$dir/config.yml" <<EOF
auth:
  htpasswd:
    realm: mirrorctl-e2e
    path: $E2E_WORK/registry/htpasswd
EOF
  fi
}

registry_start() {
  mkdir -p "$E2E_WORK/registry" "$E2E_WORK/secrets"
  chmod 0700 "$E2E_WORK/secrets"
  PASS_FILE=$E2E_WORK/secrets/registry-password
  printf '%s\n' "$REG_PASS" >"$PASS_FILE" && chmod 0600 "$PASS_FILE"
  # -i: the password from stdin (one line), so no shell quoting is involved; -B: bcrypt
  printf '%s\n' "$REG_PASS" | htpasswd -i -B -c "$E2E_WORK/registry/htpasswd" "$REG_USER" 2>>"$E2E_LOGS/htpasswd.log" || return 1
  registry_config auth "$REG_AUTH" htpasswd
  registry_config open "$REG_OPEN"
  REG_LOG_AUTH=$E2E_LOGS/registry-auth.log
  REG_LOG_OPEN=$E2E_LOGS/registry-open.log
  spawn registry-auth "$REG_LOG_AUTH" docker-registry serve "$E2E_WORK/registry/auth/config.yml"
  spawn registry-open "$REG_LOG_OPEN" docker-registry serve "$E2E_WORK/registry/open/config.yml"
  wait_until 20 curl -sf "http://$REG_OPEN/v2/" && wait_until 20 curl -s -o /dev/null "http://$REG_AUTH/v2/"
}

http_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# The auth registry must refuse no or wrong credentials and accept the test password.
registry_auth_ok() {
  local c
  c=$(http_code "http://$REG_AUTH/v2/") && [ "$c" = 401 ] || { echo "no credentials: HTTP $c (want 401)"; return 1; }
  c=$(http_code -u "$REG_USER:wrong" "http://$REG_AUTH/v2/") && [ "$c" = 401 ] || { echo "wrong password: HTTP $c (want 401)"; return 1; }
  c=$(http_code -u "$REG_USER:$REG_PASS" "http://$REG_AUTH/v2/") && [ "$c" = 200 ] || { echo "test password: HTTP $c (want 200)"; return 1; }
  c=$(http_code "http://$REG_OPEN/v2/") && [ "$c" = 200 ] || { echo "open registry: HTTP $c (want 200)"; return 1; }
}

crane_() { DOCKER_CONFIG=$E2E_WORK/crane "$TOOLDIR_crane/crane" "$@"; }

# Build the test image offline and push it to both registries.
image_push() {
  local img=$E2E_WORK/image l
  rm -rf "$img" && mkdir -p "$img/rootfs/bin" || return 1
  cp /bin/busybox "$img/rootfs/bin/busybox" || return 1
  for l in sh echo cat sleep ls; do ln -s busybox "$img/rootfs/bin/$l"; done
  tar --owner=0 --group=0 --numeric-owner -C "$img/rootfs" -cf "$img/layer.tar" . || return 1
  local open=$REG_OPEN/$IMAGE_REPO:$IMAGE_TAG auth=$REG_AUTH/$IMAGE_REPO:$IMAGE_TAG
  crane_ append -f "$img/layer.tar" -t "$open" &&
    crane_ mutate "$open" --set-platform linux/amd64 --entrypoint /bin/sh \
      --cmd "-c,echo hello-from-mirror; sleep 3600" -t "$open" &&
    printf '%s\n' "$REG_PASS" | crane_ auth login "$REG_AUTH" -u "$REG_USER" --password-stdin &&
    crane_ copy "$open" "$auth" || return 1
  local d1 d2
  d1=$(crane_ digest "$open") && d2=$(crane_ digest "$auth") && [ "$d1" = "$d2" ] || { echo "digests differ: $d1 / $d2"; return 1; }
  IMAGE_DIGEST=$d1
  echo "library/test:latest = $IMAGE_DIGEST on both registries"
}

# ------------------------------------------------------------------ access-log checks
log_mark() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
log_since() { tail -n "+$(( $2 + 1 ))" "$1" 2>/dev/null; }

# served_ns LOG MARK NS: since MARK the registry answered 200 for a manifest request that a
# containerd mirror made for upstream NS (containerd appends ?ns=<upstream> on mirror hosts).
served_ns() {
  # (grep without -q: under pipefail an early exit would fail the pipeline with SIGPIPE)
  log_since "$1" "$2" | grep -E "\"(GET|HEAD) /v2/$IMAGE_REPO/manifests/[^ ]*[?&]ns=$3 HTTP/1\\.1\" 200" >/dev/null
}

# served_direct LOG MARK: since MARK the registry served the manifest to containerd
# without ?ns= (a pull of <registry host>/library/test, not through a mirror).
served_direct() {
  log_since "$1" "$2" | grep -E "\"(GET|HEAD) /v2/$IMAGE_REPO/manifests/[^ ?]* HTTP/1\\.1\" 200 .*\"containerd/" >/dev/null
}

# served_docker LOG MARK: since MARK the registry served the test image's manifest to dockerd.
served_docker() {
  log_since "$1" "$2" | grep -E "\"(GET|HEAD) /v2/$IMAGE_REPO/manifests/[^ ]* HTTP/1\\.1\" 200" | grep '"docker/' >/dev/null
}
