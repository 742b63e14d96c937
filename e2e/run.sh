#!/usr/bin/env bash
# make e2e: mirrorctl against the real engines. Root, Debian. See e2e/README.md.
#
# Stage 1 (outer, host network): install Debian packages, build the pinned Go tools and
# k3scheck, debootstrap the node rootfs; all cached under $E2E_CACHE. Then re-run this
# script as stage 2 inside `unshare --net --mount --pid` (see lib/sandbox.sh): registries,
# engines, mirrorctl and the nspawn node all run there, with default paths, on overlays.
# Stage 1 then checks that the host's engine paths did not change, and prints the closing
# "N passed, M failed" line (exit 1 if anything failed).
#
# Environment:
#   E2E_ONLY=REGEX   run only the scenarios whose name matches (e.g. 'containerd-1.6|docker')
#   E2E_KEEP=1       keep $E2E_WORK (logs, scratch trees, specs) after the run
#   E2E_CACHE=DIR    tool and rootfs cache (default /var/cache/mirrorctl-e2e)
#   E2E_WORK=DIR     scratch directory, removed at the start and end (default /tmp/mirrorctl-e2e)
#   MIRRORCTL=FILE   the binary under test (default bin/mirrorctl, built by `make build`)
#   E2E_TIMEOUT=S    bound on the sandbox stage (default 3600 s)
set -uo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/.." && pwd)
export PATH=/usr/local/go/bin:$PATH:/usr/local/sbin:/usr/sbin:/sbin
export HOME=${HOME:-/root}   # go needs it for its caches
export E2E_CACHE=${E2E_CACHE:-/var/cache/mirrorctl-e2e}
export E2E_WORK=${E2E_WORK:-/tmp/mirrorctl-e2e}
export E2E_LOGS=$E2E_WORK/logs
export E2E_RESULTS=$E2E_WORK/results.txt
MIRRORCTL=${MIRRORCTL:-$REPO/bin/mirrorctl}
case $MIRRORCTL in /*) ;; *) MIRRORCTL=$PWD/$MIRRORCTL ;; esac
export MIRRORCTL

# shellcheck source=e2e/versions.sh
source "$E2E_DIR/versions.sh"
for f in "$E2E_DIR"/lib/*.sh "$E2E_DIR"/scenarios/*.sh; do
  # shellcheck disable=SC1090
  source "$f"
done

# ================================================================== stage 2: the sandbox
run_scenario() {  # run_scenario NAME FUNCTION ARGS...
  local name=$1; shift
  if [ -n "${E2E_ONLY:-}" ] && ! [[ $name =~ $E2E_ONLY ]]; then return 0; fi
  CURRENT_SCENARIO=$name
  SCEN_LOG=$E2E_LOGS/scenario-${name//\//_}.log
  SCEN_LOGS=() SCEN_FILES=() SCEN_LOG_HOOK=
  head_line "$name"
  local mark=${#PIDS[@]} t fails_before
  t=$(now_ms)
  fails_before=$(grep -c '^FAIL' "$E2E_RESULTS")
  "$@"
  stop_since "$mark"
  if [ "$(grep -c '^FAIL' "$E2E_RESULTS")" != "$fails_before" ] && [ ${#SCEN_FILES[@]} -gt 0 ]; then
    say "      === files under test in $name:"
    scen_show_files
  fi
  printf 'time  %-48s %8s\n' "scenario $name" "$(secs_since "$t")"
}

sc_sandbox() {
  check "only the loopback interface exists and there is no route" \
    bash -c '[ "$(ip -o link show | wc -l)" = 1 ] && [ -z "$(ip route show)" ] && [ -z "$(ip -6 route show | grep -v "^::1\|^fe80")" ]'
  check "overlays on ${OVERLAID[*]} (the host's files stay as they are)" \
    bash -c 'for d in '"${OVERLAID[*]}"'; do findmnt -rn -M "$d" -t overlay >/dev/null || { echo "$d is not an overlay"; exit 1; }; done'
}

sc_mirror() {
  local t; t=$(now_ms)
  registry_start >>"$SCEN_LOG" 2>&1 || { fail "docker-registry on $REG_AUTH (htpasswd) and $REG_OPEN start" "$REG_LOG_AUTH" "$REG_LOG_OPEN"; return 1; }
  pass "docker-registry on $REG_AUTH (htpasswd, bcrypt) and $REG_OPEN (open) up in $(secs_since "$t")"
  check "auth registry: 401 without or with a wrong password, 200 with the test password" registry_auth_ok || return 1
  check "test image built offline (busybox-static) and pushed to both registries" image_push || return 1
}

inner_exit() {
  local rc=$?
  trap - EXIT
  stop_since 0
  exit "$rc"
}

inner_main() {
  trap inner_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  CURRENT_SCENARIO=sandbox
  SCEN_LOG=$E2E_LOGS/scenario-sandbox.log
  sandbox_init >>"$SCEN_LOG" 2>&1 || { fail "set up the sandbox (lo, overlays)" "$SCEN_LOG"; exit 1; }
  sc_sandbox
  CURRENT_SCENARIO=mirror
  SCEN_LOG=$E2E_LOGS/scenario-mirror.log
  head_line "mirror"
  sc_mirror || exit 1
  if tokenauth_wanted; then
    CURRENT_SCENARIO=tokenauth SCEN_LOG=$E2E_LOGS/scenario-tokenauth.log
    head_line "token-auth mirror and doctor's stand-ins"
    sc_tokenauth
  fi

  local v
  # the containerd matrix: every minor (versions.sh), the same scenario functions
  for v in $(ctrd_labels); do
    run_scenario "containerd-$v/handmade-config" sc_containerd "$v" config handmade
    run_scenario "containerd-$v/handmade-header" sc_containerd "$v" header handmade
    run_scenario "containerd-$v/sync-config" sc_containerd "$v" config mirrorctl
    run_scenario "containerd-$v/sync-header" sc_containerd "$v" header mirrorctl
    run_scenario "containerd-$v/legacy" sc_containerd_legacy "$v"
    run_scenario "containerd-$v/sync-auto" sc_containerd_node "$v" auto
    if ctrd_at_least "$v" 2.1; then
      run_scenario "containerd-$v/colon-list" sc_containerd_node "$v" colon
    fi
  done
  run_scenario crictl/sync sc_crictl
  run_scenario k3s/sync sc_k3s
  run_scenario docker/handmade sc_docker_handmade
  run_scenario docker/sync sc_docker_sync 20
  run_scenario docker-29/classic-store sc_docker_sync 29
  run_scenario docker-29/handmade-store sc_docker29_store handmade
  run_scenario docker-29/containerd-store sc_docker29_store mirrorctl
  run_scenario containers/podman sc_containers
  for v in 1.6 "$C2_LABEL"; do
    run_scenario "token/containerd-$v-config" sc_token_containerd "$v" config
    run_scenario "token/containerd-$v-header" sc_token_containerd "$v" header
  done
  run_scenario token/docker sc_token_docker
  run_scenario doctor/faults sc_doctor_faults
  run_scenario doctor/ok sc_doctor_ok
  run_scenario node/sync sc_node_sync
  run_scenario node/unhealthy sc_node_unhealthy
  run_scenario node/activation sc_node_activation
  run_scenario package/files sc_package_files
  run_scenario package/node sc_package_node
  run_scenario package/cloud-init sc_package_cloud_init
  run_scenario package/image sc_package_image
}

# ================================================================== stage 1: the host
INNER_PID=
outer_exit() {
  local rc=$? inner s
  trap - EXIT INT TERM
  if [ -n "$INNER_PID" ] && alive "$INNER_PID"; then
    # stop the sandbox's PID 1 (our child's child) so it cleans up, then unshare
    for inner in $(pgrep -P "$INNER_PID"); do kill -TERM "$inner" 2>/dev/null; done
    wait_until 60 bash -c "! kill -0 $INNER_PID 2>/dev/null"
    stop_pid "$INNER_PID"
  fi
  stop_since 0
  [ "$rc" -ge 128 ] && record "FAIL  run: interrupted by a signal (exit $rc)"
  summary
  s=$?
  [ "$rc" -ge 128 ] && exit "$rc"   # interrupted
  exit "$s"
}

summary() {
  local passed failed
  passed=$(grep -c '^PASS' "$E2E_RESULTS" 2>/dev/null)
  failed=$(grep -c '^FAIL' "$E2E_RESULTS" 2>/dev/null)
  head_line "summary"
  grep -E '^INFO  .*MEASURE' "$E2E_RESULTS" 2>/dev/null | sed 's/^INFO  /  /'
  if [ "${failed:-0}" -gt 0 ]; then
    say "failed:"
    grep '^FAIL' "$E2E_RESULTS" | sed 's/^/  /'
  fi
  say "total $(secs_since "$E2E_T0")"
  if [ "${E2E_KEEP:-}" = 1 ]; then
    say "work files kept in $E2E_WORK (logs in $E2E_LOGS)"
  else
    umount_under "$E2E_WORK"
    rm -rf --one-file-system "$E2E_WORK"
  fi
  printf '%s passed, %s failed\n' "${passed:-0}" "${failed:-0}"
  [ "${failed:-0}" -eq 0 ] && [ "${passed:-0}" -gt 0 ] || return 1
}

outer_main() {
  E2E_T0=$(now_ms)
  if [ "$(id -u)" != 0 ]; then echo "e2e/run.sh must run as root (it starts daemons and namespaces)" >&2; exit 2; fi
  mkdir -p "$E2E_CACHE"
  exec 9>"$E2E_CACHE/.lock"
  flock -w 1800 9 || { echo "another e2e run holds $E2E_CACHE/.lock" >&2; exit 2; }
  umount_under "$E2E_WORK"
  rm -rf --one-file-system "$E2E_WORK"
  mkdir -p "$E2E_LOGS" && : >"$E2E_RESULTS" || exit 2
  trap outer_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  CURRENT_SCENARIO=setup
  head_line "setup (host network: Debian packages, Go module proxy; cached in $E2E_CACHE)"
  timed "setup: Debian packages" apt_ensure || { fail "install Debian packages" "$E2E_LOGS/apt.log"; exit 1; }
  rootfs_start
  if ! timed "setup: Go tools (crane, crictl, containerd ${CONTAINERD_VERSIONS[*]}, dockerd $DOCKERD_RELEASE)" go_tools_ensure; then
    fail "build the pinned Go tools: ${TOOLS_FAILED[*]} failed (logs $E2E_LOGS/go-build-*.log)"
    # without the test image and crictl nothing can run; without one engine, its scenarios fail
    tool_cached "$TOOLDIR_crane" crane && tool_cached "$TOOLDIR_crictl" crictl || exit 1
  fi
  timed "setup: k3scheck (e2e/k3scheck, wharfie)" k3scheck_ensure || { fail "build e2e/k3scheck"; K3SCHECK=/nonexistent/k3scheck; }
  timed "setup: distribution $DISTRIBUTION_VERSION, e2e/tokenserver" tokenauth_tools_ensure || { fail "build the token-auth tools"; TOKENSERVER=/nonexistent/tokenserver; }
  rootfs_wait || { fail "debootstrap the node rootfs" "$E2E_LOGS/debootstrap.log"; NODE_ROOTFS=; }
  if [ -x "$MIRRORCTL" ]; then
    say "mirrorctl under test: $MIRRORCTL ($("$MIRRORCTL" version 2>&1 | head -n 1))"
  else
    say "warning: $MIRRORCTL does not exist (run make build): every mirrorctl check will fail"
  fi
  say "setup done in $(secs_since "$E2E_T0")"

  CURRENT_SCENARIO=sandbox
  host_snapshot >"$E2E_WORK/host-before.txt"
  export TOOLDIR_crane TOOLDIR_crictl K3SCHECK NODE_ROOTFS E2E_T0 TOOLDIR_distribution TOKENSERVER
  # a bound on the whole sandbox stage: on expiry its PID 1 gets SIGTERM and cleans up
  timeout -k 60 "${E2E_TIMEOUT:-3600}" \
    unshare --net --mount --propagation private --pid --fork --mount-proc --kill-child=TERM \
    env E2E_STAGE=inner bash "$E2E_DIR/run.sh" &
  INNER_PID=$!
  PIDS+=("$INNER_PID")
  wait "$INNER_PID"
  local rc=$?
  INNER_PID=
  [ $rc -eq 0 ] || fail "the sandbox stage ended with exit status $rc (see above)"

  CURRENT_SCENARIO=host
  head_line "host"
  host_snapshot >"$E2E_WORK/host-after.txt"
  if d=$(diff -u "$E2E_WORK/host-before.txt" "$E2E_WORK/host-after.txt"); then
    pass "the host's engine paths and mounts are unchanged after the run"
  else
    fail "the host's engine paths and mounts are unchanged after the run"
    printf '%s\n' "$d" | head -n 40 | sed 's/^/      | /'
  fi
  exit 0   # outer_exit prints the summary and sets the exit status
}

if [ "${E2E_STAGE:-}" = inner ]; then
  inner_main "$@"
else
  outer_main "$@"
fi
