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
#   containers/doctor  after `mirrorctl sync`, `mirrorctl doctor` against the real mirror
#                      names podman's route (the mirror, reached over plain HTTP after
#                      HTTPS as insecure = true makes podman do, with the spec's credentials
#                      from root's auth.json; then the registry) and exits 0, agreeing with
#                      where podman's pulls go; then one fault at a time, each also failing
#                      podman itself: a later drop-in that blocks docker.io (FAIL
#                      registry_blocked, exit 1), a wrong password in the spec, written by
#                      sync to auth.json (FAIL wrong_credentials), a stale podman login read
#                      before mirrorctl's auth.json (WARN auth_shadowed, fix podman logout,
#                      after which the pull works and doctor says OK).

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

# ct_doctor FILE ARGS...: mirrorctl doctor -o json ARGS into FILE (text into FILE.txt); the
# exit status is echoed.
ct_doctor() {
  local f=$1; shift
  mctl doctor -o json "$@" >"$f" 2>"$f.err"
  echo $?
  mctl doctor "$@" >"$f.txt" 2>&1
}

# ct_routes FILE REGISTRY: podman's routes for REGISTRY ("URL mirror|upstream CREDS VIA"), then
# "=> LEVEL CAUSE".
ct_routes() {
  jq -r --arg r "$2" '.engines[] | select(.engine == "containers") | .images[] | select(.who == "podman" and .image.registry == $r) |
    (.routes[] | "\(.url) \(if .mirror then "mirror" else "upstream" end) \(.auth.name // "-") \(.auth.via // "-")"),
    "=> \(.level) \(.cause // "-")"' "$1"
}

# ct_routes_are FILE RC WANT_RC REGISTRY LINE...: doctor exited WANT_RC and podman's routes for
# REGISTRY are exactly LINE... (the last one "=> level cause").
ct_routes_are() {
  local f=$1 rc=$2 want_rc=$3 r=$4 got want; shift 4
  got=$(ct_routes "$f" "$r")
  want=$(printf '%s\n' "$@")
  echo "exit $rc; podman $r:"; sed 's/^/  /' <<<"$got"
  [ "$rc" = "$want_rc" ] && [ "$got" = "$want" ] || { echo "want exit $want_rc and:"; sed 's/^/  /' <<<"$want"; return 1; }
}

# ct_fix_names FILE REGISTRY CAUSE TEXT: podman's verdict for REGISTRY has CAUSE and its fix holds TEXT.
ct_fix_names() {
  jq -r --arg r "$2" '.engines[] | select(.engine == "containers") | .images[] | select(.who == "podman" and .image.registry == $r) |
    "\(.level) \(.cause): \(.summary)\n  fix: \(.fix)"' "$1"
  jq -e --arg r "$2" --arg c "$3" --arg t "$4" '[.engines[] | select(.engine == "containers") | .images[] |
    select(.who == "podman" and .image.registry == $r and .cause == $c and (.fix | contains($t)))] | length == 1' "$1" >/dev/null
}

# ct_no_secret FILE...: no form of the passwords (the right one and the wrong ones used here).
ct_no_secret() {
  local f
  for f in "$@"; do
    if grep -F -e "$REG_PASS" -e "$(basic_b64 "$REG_USER" "$REG_PASS")" -e 'ss $wörd' -e "$CT_WRONG" \
      -e "$(basic_b64 "$REG_USER" "$CT_WRONG")" "$f" >/dev/null; then echo "$f shows a password"; return 1; fi
  done
  echo "no password in $*"
}

CT_WRONG='wrong-Pässword-7'

# logout_then_pull IMAGE: podman logout of the mirror, then IMAGE is served by it.
logout_then_pull() { podman_ logout "$REG_AUTH" && ct_pull_via "$REG_LOG_AUTH" "$IMAGE_TAG" "$1"; }

sc_containers_doctor() {
  local d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_} rc hub=https://registry-1.docker.io/v2
  mkdir -p "$d"
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return; }
  if ! containers_setup "$d" >>"$SCEN_LOG" 2>&1; then
    fail "podman and skopeo installed" "$SCEN_LOG"
    return
  fi
  SCEN_FILES=(/etc/containers/registries.conf.d /root/.config/containers /run/containers)
  containers_spec >"$d/spec.yaml"
  IMAGE_DIGEST=$(crane_ digest "$REG_OPEN/$IMAGE_REPO:$IMAGE_TAG" 2>>"$SCEN_LOG")
  [ -n "$IMAGE_DIGEST" ] || { fail "the test image's digest (crane digest)" "$SCEN_LOG"; return; }
  if ! mctl sync --config "$d/spec.yaml" >>"$SCEN_LOG" 2>&1; then fail "mirrorctl sync" "$SCEN_LOG"; return; fi
  local hubimg=docker.io/$IMAGE_REPO:$IMAGE_TAG inv=registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG
  local mirror_line="https://$REG_AUTH/v2 mirror configs.\"$REG_AUTH\" /root/.config/containers/auth.json"

  rc=$(ct_doctor "$d/ok.json" --config "$d/spec.yaml" "$hubimg" "$inv" "$REG_OPEN/$IMAGE_REPO@$IMAGE_DIGEST")
  check "doctor: podman pulls docker.io through the mirror with configs.\"$REG_AUTH\" from root's auth.json, then $hub; exit 0" \
    ct_routes_are "$d/ok.json" "$rc" 0 docker.io "$mirror_line" "$hub upstream - -" "=> ok -" ||
    sed 's/^/      | /' "$d/ok.json.txt" | head -n 60
  check "doctor: registry.example.invalid through the mirror, then the registry" \
    ct_routes_are "$d/ok.json" "$rc" 0 registry.example.invalid "$mirror_line" "https://registry.example.invalid/v2 upstream - -" "=> ok -"
  check "doctor: $REG_OPEN by digest through the (digest-only) mirror, then $REG_OPEN" \
    ct_routes_are "$d/ok.json" "$rc" 0 "$REG_OPEN" "$mirror_line" "https://$REG_OPEN/v2 upstream - -" "=> ok -"
  check "doctor: the mirror is reached over plain HTTP after HTTPS fails, as podman does for insecure = true" \
    jq -e --arg u "https://$REG_AUTH/v2" --arg f "http://$REG_AUTH/v2" '.endpoints[] | select(.url == $u) | .fallback == $f' "$d/ok.json"
  # The tag of the digest-only registry is not mirrored: doctor says so, as the access log did.
  rc=$(ct_doctor "$d/tag.json" --config "$d/spec.yaml" "$REG_OPEN/$IMAGE_REPO:$IMAGE_TAG")
  check "doctor: the tag $REG_OPEN/$IMAGE_REPO:$IMAGE_TAG goes to $REG_OPEN itself (mirror-by-digest-only): no_mirror, exit 1" \
    ct_routes_are "$d/tag.json" "$rc" 1 "$REG_OPEN" "https://$REG_OPEN/v2 upstream - -" "=> fail no_mirror"

  # Fault 1: a later drop-in with docker.io's prefix replaces mirrorctl's table and blocks it.
  printf '[[registry]]\nlocation = "docker.io"\nblocked = true\n' >/etc/containers/registries.conf.d/60-block.conf
  check "with a blocked docker.io, podman pull $hubimg fails" ct_pull_fails "$hubimg"
  rc=$(ct_doctor "$d/blocked.json" --config "$d/spec.yaml" "$hubimg")
  check "doctor names it: registry_blocked with its fix, no route, exit 1" \
    ct_routes_are "$d/blocked.json" "$rc" 1 docker.io "=> fail registry_blocked" &&
    check "  ... the fix says to remove blocked = true" ct_fix_names "$d/blocked.json" docker.io registry_blocked "remove blocked = true"
  rm -f /etc/containers/registries.conf.d/60-block.conf

  # Fault 2: a wrong password in the spec, which sync writes to root's auth.json.
  printf '%s\n' "$CT_WRONG" >"$d/wrong-password"
  sed "s#password_file: .*#password_file: $d/wrong-password#" "$d/spec.yaml" >"$d/wrong.yaml"
  mctl sync --config "$d/wrong.yaml" >>"$SCEN_LOG" 2>&1
  check "with the wrong password in auth.json, podman pull $hubimg fails" ct_pull_fails "$hubimg"
  rc=$(ct_doctor "$d/wrong.json" --config "$d/wrong.yaml" "$hubimg")
  check "doctor names it: wrong_credentials, fix: check the password (password_file), exit 1" \
    ct_routes_are "$d/wrong.json" "$rc" 1 docker.io "$mirror_line" "$hub upstream - -" "=> fail wrong_credentials" &&
    check "  ... the fix names password_file" ct_fix_names "$d/wrong.json" docker.io wrong_credentials "password_file"
  mctl sync --config "$d/spec.yaml" >>"$SCEN_LOG" 2>&1

  # Fault 3: a stale podman login in the runtime file, read before mirrorctl's auth.json.
  mkdir -p /run/containers/0
  printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG_AUTH" "$(basic_b64 "$REG_USER" "$CT_WRONG")" >/run/containers/0/auth.json
  check "with a stale login in /run/containers/0/auth.json, podman pull $hubimg fails" ct_pull_fails "$hubimg"
  rc=$(ct_doctor "$d/stale.json" --config "$d/spec.yaml" "$hubimg")
  check "doctor names the credentials podman sends from /run/containers/0/auth.json (not the spec's) and the fix podman logout" \
    ct_routes_are "$d/stale.json" "$rc" 0 docker.io "https://$REG_AUTH/v2 mirror auths.\"$REG_AUTH\" (not the spec's) /run/containers/0/auth.json" \
      "$hub upstream - -" "=> warn credentials_not_from_spec" &&
    check "  ... its fix: podman logout $REG_AUTH" ct_fix_names "$d/stale.json" docker.io credentials_not_from_spec "podman logout $REG_AUTH"
  check "the fix works: podman logout $REG_AUTH, then the pull is served by the mirror" logout_then_pull "$hubimg"
  rc=$(ct_doctor "$d/after.json" --config "$d/spec.yaml" "$hubimg")
  check "then doctor says OK again, exit 0" ct_routes_are "$d/after.json" "$rc" 0 docker.io "$mirror_line" "$hub upstream - -" "=> ok -"
  check "doctor's output holds no form of a password" ct_no_secret "$d"/*.json "$d"/*.json.txt "$d"/*.json.err
}
