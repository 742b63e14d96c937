# shellcheck shell=bash
# The systemd node (systemd-nspawn): Debian's containerd managed by a real systemd.
#   node/sync   mirrorctl sync inside the node, with its default spec path
#               /etc/mirrorctl/config.yaml; containerd restarted through systemd (by
#               mirrorctl or, while activation is pending, by systemctl); crictl pulls
#               through the mirror with the node's /etc/crictl.yaml.
# The activation scenarios (no restart for hosts.toml, one restart for config.toml,
# reload for daemon.json, rollback) build on lib/node.sh the same way.

node_collect() { node_journal containerd.service docker.service; }

sc_node_sync() {
  local out=$E2E_WORK/scen/node-boot.out
  mkdir -p "${out%/*}"
  SCEN_LOG_HOOK=node_collect
  # not in $(...): node_boot sets NODE_* and records the nspawn PID in this shell
  if ! node_boot sync >"$out" 2>&1; then
    cat "$out" >>"$SCEN_LOG"
    fail "node boots to 'running'"; tail -n 20 "$out" | sed 's/^/      | /'
    node_shutdown; return
  fi
  cat "$out" >>"$SCEN_LOG"
  pass "node boots to 'running' ($(grep -o "after [0-9.]*s" "$out"))"
  SCEN_LOGS=("$NODE_DIR/journal.log")
  SCEN_FILES=("$NODE_DIR/etc-mirrorctl/config.yaml" "$NODE_DIR/etc-snapshot")
  check "containerd.service is active" node_wait_active containerd.service
  check "containerd answers on its socket" node_wait_socket

  # The spec at mirrorctl's default path, the password file beside it (mode 0600).
  printf '%s\n' "$REG_PASS" >"$NODE_DIR/etc-mirrorctl/registry-password"
  chmod 0600 "$NODE_DIR/etc-mirrorctl/registry-password"
  { spec_mirrors /etc/mirrorctl/registry-password; spec_engines true false false true; } >"$NODE_DIR/etc-mirrorctl/config.yaml"

  local pid0 pid1
  pid0=$(node_prop containerd.service MainPID)
  check "mirrorctl sync inside the node (default spec path, --root /)" node_sh /usr/local/bin/mirrorctl sync || { node_shutdown; return; }
  pid1=$(node_prop containerd.service MainPID)
  if [ "$pid1" = "$pid0" ]; then
    info "mirrorctl sync left containerd running (MainPID $pid0): restarting it with systemctl"
    check "systemctl restart containerd.service" node_sh systemctl restart containerd.service
  else
    info "mirrorctl sync restarted containerd itself (MainPID $pid0 -> $pid1)"
  fi
  check "containerd.service is active after the restart" node_wait_active containerd.service
  check "containerd answers on its socket" node_wait_socket
  check "CRI plugin reports ok" node_plugins_ok
  check "crictl pull registry.example.invalid/... inside the node, served by the auth mirror" \
    node_cri_pull_via "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "crictl pull test:latest (docker.io) inside the node, served by the auth mirror" \
    node_cri_pull_via "$REG_LOG_AUTH" docker.io test:latest
  check "mirrorctl plan --exit-code inside the node: nothing pending" node_sh /usr/local/bin/mirrorctl plan --exit-code
  node_shutdown
}
