# shellcheck shell=bash
# crictl and k3s scenarios.
#   crictl/sync  the crictl.yaml mirrorctl writes is accepted by crictl (whose parser rejects
#                any unknown key) against the running containerd; keys of its own are kept
#   k3s/sync     the registries.yaml mirrorctl writes means to k3s what the spec says, read
#                with k3s's own loader (e2e/k3scheck, github.com/rancher/wharfie)

crictl_cfg() { "$TOOLDIR_crictl/crictl" "$@"; }

sc_crictl() {
  local d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_}
  mkdir -p "$d"
  use_containerd 1.6 || { fail "use containerd 1.6 binaries"; return; }
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return; }
  SCEN_FILES=(/etc/crictl.yaml /etc/containerd)
  containerd_baseline_config 1.6 >/etc/containerd/config.toml
  ctrd_start || { fail "containerd 1.6 starts" "$CTRD_LOG"; return; }
  SCEN_LOGS=("$CTRD_LOG")

  { spec_mirrors "$PASS_FILE"; spec_engines true false false true; } >"$d/spec.yaml"
  check "mirrorctl sync --no-restart (containerd + crictl)" mctl sync --config "$d/spec.yaml" --no-restart || return
  check "/etc/crictl.yaml was written" test -s /etc/crictl.yaml
  ctrd_restart || { fail "containerd restarts with the new config" "$CTRD_LOG"; return; }
  check "crictl --config /etc/crictl.yaml info" crictl_cfg --config /etc/crictl.yaml info
  check "crictl info (default config path)" crictl_cfg info
  check "crictl --config /etc/crictl.yaml pull registry.example.invalid/... through the mirror" \
    crictl_cfg --config /etc/crictl.yaml pull "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"

  # A crictl.yaml a user wrote, with keys of its own and no endpoints yet.
  printf 'timeout: 7\ndebug: false\npull-image-on-create: true\n' >/etc/crictl.yaml
  check "mirrorctl sync --no-restart over a user's crictl.yaml" mctl sync --config "$d/spec.yaml" --no-restart || return
  check "the user's keys were kept (timeout: 7, pull-image-on-create: true)" \
    bash -c "grep -Eq '^timeout: *7\$' /etc/crictl.yaml && grep -Eq '^pull-image-on-create: *true\$' /etc/crictl.yaml"
  check "crictl info accepts the merged file" crictl_cfg info
  ctrd_stop
}

sc_k3s() {
  local d=$E2E_WORK/scen/${CURRENT_SCENARIO//\//_} f=/etc/rancher/k3s/registries.yaml
  mkdir -p "$d"
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return; }
  SCEN_FILES=(/etc/rancher)
  { spec_mirrors "$PASS_FILE"; spec_engines false false true false; } >"$d/spec.yaml"
  # What k3s must see: the spec's registries with the secret resolved (JSON is YAML).
  jq -n --arg reg "$REG_AUTH" --arg user "$REG_USER" --arg pass "$REG_PASS" '{
      mirrors: {
        "registry.example.invalid": {endpoint: ["http://" + $reg]},
        "docker.io": {endpoint: ["http://" + $reg]}
      },
      configs: {($reg): {auth: {username: $user, password: $pass}}}
    }' >"$d/want.json"
  check "mirrorctl sync --no-restart (k3s)" mctl sync --config "$d/spec.yaml" --no-restart || return
  check "$f is mode 0600 (it holds a password)" bash -c "[ \"\$(stat -c %a '$f')\" = 600 ]"
  check "k3s's loader (wharfie GetPrivateRegistries) reads $f as the spec says, no ignored keys" \
    "$K3SCHECK" -file "$f" -want "$d/want.json"
  check "mirrorctl plan --exit-code after the sync: files up to date, only the restart --no-restart left owed (exit 3)" \
    k3s_plan_owes_restart_only "$d/spec.yaml"
}

# k3s_plan_owes_restart_only SPEC: plan has no file to write, and says the
# k3s restart a --no-restart sync left owed (k3s is not running here).
k3s_plan_owes_restart_only() {
  local out rc
  out=$(mctl plan --config "$1" --exit-code 2>&1); rc=$?
  printf '%s\n(exit %d)\n' "$out" "$rc"
  [ "$rc" -eq 3 ] && grep -q '^k3s: files up to date; owed from an earlier sync: restart k3s.service' <<<"$out" &&
    ! grep -q 'file(s) to change' <<<"$out"
}
