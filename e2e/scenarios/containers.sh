# shellcheck shell=bash
# containers scenario: Debian 12's podman (4.3) and skopeo (1.9), rootful, on the
# sandboxed host, with Debian's own /etc/containers (registries.conf, shortnames.conf,
# policy.json). CRI-O is not packaged for Debian 12: its reload and restart are covered
# in cmd/mirrorctl (TestSyncActivatesCRIO, with the D-Bus recorder), and its behaviour
# is documented in docs/engines/containers.md.
#
#   containers/podman  after `mirrorctl sync`, with no credentials on the command line
#                      or in the environment: podman pull of a docker.io name and of
#                      another registry's name, and skopeo inspect, are served by the
#                      authenticated mirror (its access log shows it); capabilities:
#                      [pull] (mirror-by-digest-only) pulls the tag from the registry
#                      itself and the digest from the mirror; after a reboot-like wipe of
#                      /run/containers the next boot sync has nothing to restore and
#                      pulls still go through the mirror with the credentials.

# The spec: docker.io and registry.example.invalid through the auth mirror; the open
# registry as a registry of its own whose mirror (the auth one) serves digests only.
containers_spec() {
  cat <<EOF
mirrors:
  docker.io:
    endpoint: ["http://$REG_AUTH"]
  registry.example.invalid:
    endpoint: ["http://$REG_AUTH"]
  "$REG_OPEN":
    endpoint: ["http://$REG_AUTH"]
    capabilities: [pull]
configs:
  "$REG_AUTH":
    auth:
      username: $REG_USER
      password_file: $PASS_FILE
engines:
  containerd: {enabled: false}
  docker: {enabled: false}
  k3s: {enabled: false}
  crictl: {enabled: false}
  containers: {enabled: true}
EOF
}

# Podman and skopeo as a root service would run them: no REGISTRY_AUTH_FILE, no
# XDG_RUNTIME_DIR (so root's runtime auth file is /run/containers/0/auth.json), no
# DOCKER_CONFIG, and never --creds. Images go to vfs storage in scratch (the sandbox's
# /var/lib is an overlay, which podman's overlay driver refuses to sit on).
CT_ENV=(env -u REGISTRY_AUTH_FILE -u XDG_RUNTIME_DIR -u DOCKER_CONFIG -u CONTAINERS_REGISTRIES_CONF
  -u CONTAINERS_CONF HOME=/root)
podman_() {
  "${CT_ENV[@]}" timeout 120 podman --root "$CT_STORE" --storage-driver vfs \
    --events-backend file --cgroup-manager cgroupfs "$@"
}
skopeo_() { "${CT_ENV[@]}" timeout 120 skopeo "$@"; }

# served_ct LOG MARK REF [AGENT]: since MARK the registry answered 200 to a manifest
# request for library/test with REF (a tag or a digest), from containers/image's user
# agent (podman's is containers/<version>, skopeo's skopeo/<version>).
served_ct() {
  log_since "$1" "$2" | grep -E "\"(GET|HEAD) /v2/$IMAGE_REPO/manifests/$3 HTTP/1\\.1\" 200 .*\"${4:-containers}/" >/dev/null
}
# asked_ct LOG MARK: since MARK the registry got any manifest request for library/test.
asked_ct() {
  log_since "$1" "$2" | grep -E "\"(GET|HEAD) /v2/$IMAGE_REPO/manifests/" >/dev/null
}

# ct_pull_via LOG REF_IN_LOG IMAGE: podman pull IMAGE succeeds and LOG shows it served.
ct_pull_via() {
  local log=$1 ref=$2 img=$3 mark out
  podman_ rmi -f "$img" >/dev/null 2>&1
  mark=$(log_mark "$log")
  out=$(podman_ pull "$img" 2>&1) || { echo "$out"; return 1; }
  echo "$out" | tail -n 2
  served_ct "$log" "$mark" "$ref" || { echo "pulled, but $log shows no 200 for manifests/$ref"; return 1; }
}

# ct_pull_from_not FROM_LOG NOT_LOG REF IMAGE: podman pull IMAGE succeeds, FROM_LOG shows
# it served (manifests/REF), NOT_LOG shows no manifest request at all.
ct_pull_from_not() {
  local from=$1 not=$2 ref=$3 img=$4 m1 m2 out
  podman_ rmi -f "$img" >/dev/null 2>&1
  m1=$(log_mark "$from") m2=$(log_mark "$not")
  out=$(podman_ pull "$img" 2>&1) || { echo "$out"; return 1; }
  served_ct "$from" "$m1" "$ref" || { echo "pulled, but $from shows no 200 for manifests/$ref"; return 1; }
  ! asked_ct "$not" "$m2" || { echo "$not shows a manifest request for this pull:"; log_since "$not" "$m2" | grep manifests; return 1; }
}

# skopeo_inspect_via LOG IMAGE: skopeo inspect reports the test image's digest and LOG
# shows the manifest served.
skopeo_inspect_via() {
  local mark out
  mark=$(log_mark "$1")
  # --no-tags: the tag list comes from the registry itself, never from a mirror.
  out=$(skopeo_ inspect --no-tags "docker://$2" 2>&1) || { echo "$out"; return 1; }
  jq -r .Digest <<<"$out"
  [ "$(jq -r .Digest <<<"$out")" = "$IMAGE_DIGEST" ] || { echo "digest is not $IMAGE_DIGEST"; return 1; }
  served_ct "$1" "$mark" latest skopeo || { echo "inspected, but $1 shows no 200 for manifests/latest"; return 1; }
}

# ct_pull_fails IMAGE: podman pull IMAGE fails.
ct_pull_fails() {
  podman_ rmi -f "$1" >/dev/null 2>&1
  ! podman_ pull "$1"
}

# podman_lists_mirror PREFIX LOCATION: podman info shows LOCATION as PREFIX's first mirror.
podman_lists_mirror() {
  local regs
  regs=$(podman_ info --format '{{json .Registries}}') || return 1
  echo "$regs"
  jq -e --arg p "$1" --arg l "$2" '.[$p].Mirrors[0].Location == $l' <<<"$regs" >/dev/null
}

# no_creds_around: nothing gives podman credentials but the files mirrorctl writes.
no_creds_around() {
  local f bad=0
  for f in /run/containers/0/auth.json /root/.docker/config.json /root/.config/containers/auth.json; do
    [ -e "$f" ] && { echo "$f exists"; bad=1; }
  done
  [ $bad = 0 ] && echo "no auth file before the sync"
  [ $bad = 0 ]
}

# containers_setup DIR: fresh_state has given this scenario a copy of Debian's /etc/containers
# and empty ~/.config/containers and /run/containers (lib/sandbox.sh); podman's image store
# goes under DIR.
containers_setup() {
  local d=$1 p
  mkdir -p "$d/storage" || return 1
  CT_STORE=$d/storage
  for p in podman skopeo; do command -v "$p" >/dev/null || { echo "$p is not installed"; return 1; }; done
}

sc_containers() {
  local d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_} out
  mkdir -p "$d"
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return; }
  if ! containers_setup "$d" >>"$SCEN_LOG" 2>&1; then
    fail "podman and skopeo installed" "$SCEN_LOG"
    return
  fi
  SCEN_FILES=(/etc/containers/registries.conf.d /etc/containers/certs.d /root/.config/containers /var/lib/mirrorctl/state.json)
  info "$(podman --version), $(skopeo --version); Debian's registries.conf.d: $(ls /etc/containers/registries.conf.d | tr '\n' ' ')"
  containers_spec >"$d/spec.yaml"
  # the pushed image's digest (image_push ran in a check's subshell)
  IMAGE_DIGEST=$(crane_ digest "$REG_OPEN/$IMAGE_REPO:$IMAGE_TAG" 2>>"$SCEN_LOG")
  [ -n "$IMAGE_DIGEST" ] || { fail "the test image's digest (crane digest)" "$SCEN_LOG"; return; }

  check "no credentials anywhere podman looks before the sync" no_creds_around
  check "before the sync, podman pull docker.io/$IMAGE_REPO:$IMAGE_TAG fails (Docker Hub is unreachable here)" \
    ct_pull_fails "docker.io/$IMAGE_REPO:$IMAGE_TAG"
  out=$(mctl sync --config "$d/spec.yaml" --output json 2>>"$SCEN_LOG")
  printf '%s\n' "$out" >>"$SCEN_LOG"
  check "mirrorctl sync writes the drop-in and root's auth.json and activates nothing (Podman reads the files at every command)" \
    jq -e '.exit_code == 0 and (.activated | length) == 0 and (.pending_activation | length) == 0 and
      (.written | index("/etc/containers/registries.conf.d/50-mirrorctl.conf")) != null and
      (.written | index("/root/.config/containers/auth.json")) != null' <<<"$out" || return
  check "root's auth.json is 0600 and holds the mirror's credentials only" \
    bash -c "[ \"\$(stat -c %a /root/.config/containers/auth.json)\" = 600 ] && jq -e '.auths | keys == [\"$REG_AUTH\"]' /root/.config/containers/auth.json"
  check "podman reads the drop-in (podman info lists the docker.io mirror)" podman_lists_mirror docker.io "$REG_AUTH"

  check "podman pull docker.io/$IMAGE_REPO:$IMAGE_TAG (no credentials given) served by the auth mirror" \
    ct_pull_via "$REG_LOG_AUTH" "$IMAGE_TAG" "docker.io/$IMAGE_REPO:$IMAGE_TAG"
  check "podman pull registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG served by the auth mirror" \
    ct_pull_via "$REG_LOG_AUTH" "$IMAGE_TAG" "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "skopeo inspect --no-tags docker://docker.io/$IMAGE_REPO:$IMAGE_TAG through the auth mirror" \
    skopeo_inspect_via "$REG_LOG_AUTH" "docker.io/$IMAGE_REPO:$IMAGE_TAG"
  check "digest only (capabilities: [pull]): the tag $REG_OPEN/$IMAGE_REPO:$IMAGE_TAG is served by $REG_OPEN itself, not the mirror" \
    ct_pull_from_not "$REG_LOG_OPEN" "$REG_LOG_AUTH" "$IMAGE_TAG" "$REG_OPEN/$IMAGE_REPO:$IMAGE_TAG"
  check "digest only: $REG_OPEN/$IMAGE_REPO@<digest> is served by the mirror, not by $REG_OPEN" \
    ct_pull_from_not "$REG_LOG_AUTH" "$REG_LOG_OPEN" "$IMAGE_DIGEST" "$REG_OPEN/$IMAGE_REPO@$IMAGE_DIGEST"
  check "mirrorctl plan --exit-code: nothing pending after the sync (idempotent)" \
    mctl plan --config "$d/spec.yaml" --exit-code

  # A reboot empties /run (tmpfs): podman login's /run/containers/0/auth.json goes, ours
  # does not live there. The boot sync finds everything in place.
  find /run/containers -mindepth 1 -delete
  out=$(mctl sync --config "$d/spec.yaml" 2>&1)
  printf '%s\n' "$out" >>"$SCEN_LOG"
  check "after a reboot-like wipe of /run/containers the boot sync has nothing to restore" \
    grep -q "nothing to change" <<<"$out"
  check "after the wipe, podman pull docker.io/$IMAGE_REPO:$IMAGE_TAG is still served by the auth mirror with the credentials" \
    ct_pull_via "$REG_LOG_AUTH" "$IMAGE_TAG" "docker.io/$IMAGE_REPO:$IMAGE_TAG"
}
