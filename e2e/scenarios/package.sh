# shellcheck shell=bash
# Delivery (issue 6): the packages, the systemd units on a real systemd node, cloud-init
# user-data and the container image. Built beforehand by `make package image` into
# $PKG_DIST (default <repo>/dist).
#
#   package/files       the .deb's and .rpm's contents, scripts and conffiles; lintian
#                       --fail-on error,warning; rpm -qip/-qlp/--scripts/--configfiles
#   package/node        dpkg -i in the nspawn node (no engine restarted); at the next boot
#                       mirrorctl-sync.service ran before containerd.service started and the
#                       first crictl pull goes through the mirror; mirrorctl.service (watch)
#                       is active only once its first sync is done, restarting containerd
#                       through D-Bus from inside its sandbox; an upgrade with a changed
#                       conffile keeps the user's config; dpkg -r leaves the engines' files
#                       as the last sync left them; dpkg --purge removes mirrorctl's state
#   package/cloud-init  `mirrorctl cloud-init` output passes `cloud-init schema` (and the
#                       examples in packaging/cloud-init do); its bootcmd and write_files run
#                       in the node's early boot, in a stand-in for cloud-init.service with
#                       the same ordering: the package gets installed and the engines are
#                       configured before containerd starts
#   package/image       the OCI image: the binary in its layer runs; pushed to the local
#                       registry with crane; containerd 1.6 pulls it and `ctr run` prints
#                       `mirrorctl version`
#
# From the harness: check/pass/fail/info, node_boot/node_sh/node_prop/node_shutdown/
# node_cri_pull_via/node_plugins_ok/node_wait_active, use_containerd/fresh_state/
# ctrd_start/ctrd_stop/ctr_, spec_mirrors/spec_engines, crane_, the registry variables
# (REG_AUTH, REG_OPEN, REG_LOG_AUTH, PASS_FILE, IMAGE_REPO, IMAGE_TAG), NODE_ROOTFS, REPO.
# Host tools: dpkg-deb, lintian, rpm, cloud-init (its python3 modules and cloud-init-per),
# jq, tar.

PKG_DIST=${PKG_DIST:-$REPO/dist}

pkg_first() { local f; for f in "$@"; do [ -e "$f" ] && { echo "$f"; return 0; }; done; return 1; }
pkg_deb() { pkg_first "$PKG_DIST"/mirrorctl_*_"$1".deb; }
pkg_rpm() { pkg_first "$PKG_DIST"/mirrorctl-*."$1".rpm; }

# pkg_need: the packages exist (make package).
pkg_need() {
  local a
  for a in amd64 arm64; do [ -n "$(pkg_deb "$a")" ] || { echo "no $PKG_DIST/mirrorctl_*_$a.deb (run make package)"; return 1; }; done
  for a in x86_64 aarch64; do [ -n "$(pkg_rpm "$a")" ] || { echo "no $PKG_DIST/mirrorctl-*.$a.rpm (run make package)"; return 1; }; done
  ls -l "$PKG_DIST"/*.deb "$PKG_DIST"/*.rpm
}

# ------------------------------------------------------------------ package/files
PKG_DEB_FILES=(
  ./usr/bin/mirrorctl
  ./lib/systemd/system/mirrorctl.service
  ./lib/systemd/system/mirrorctl-sync.service
  ./etc/mirrorctl/config.yaml
  ./etc/default/mirrorctl
  ./usr/share/man/man1/mirrorctl.1.gz
  ./usr/share/man/man1/mirrorctl-sync.1.gz
  ./usr/share/man/man1/mirrorctl-cloud-init.1.gz
  ./usr/share/bash-completion/completions/mirrorctl
  ./usr/share/zsh/vendor-completions/_mirrorctl
  ./usr/share/fish/vendor_completions.d/mirrorctl.fish
  ./usr/share/doc/mirrorctl/copyright
  ./usr/share/doc/mirrorctl/changelog.Debian.gz
  ./usr/share/lintian/overrides/mirrorctl
)

pkg_deb_lists() {  # pkg_deb_lists DEB: every expected path is in the package
  local list p rc=0
  list=$(dpkg-deb -c "$1" | awk '{ print $NF }') || return 1
  for p in "${PKG_DEB_FILES[@]}"; do grep -qxF "$p" <<<"$list" || { echo "missing $p"; rc=1; }; done
  [ $rc = 0 ] && echo "all ${#PKG_DEB_FILES[@]} expected paths present"
  return $rc
}

pkg_deb_meta() {  # conffiles and a static binary
  local d=$E2E_WORK/pkg/deb-meta conf
  rm -rf "$d" && mkdir -p "$d" && dpkg-deb -e "$1" "$d/DEBIAN" && dpkg-deb -x "$1" "$d/root" || return 1
  conf=$(cat "$d/DEBIAN/conffiles")
  echo "conffiles: $conf"
  grep -qx /etc/mirrorctl/config.yaml <<<"$conf" || { echo "config.yaml is not a conffile"; return 1; }
  # ldd says "not a dynamic executable" (glibc >= 2.35) or "statically linked" (older), and
  # exits 1 for the former: capture first (the harness runs with pipefail)
  local l; l=$(ldd "$d/root/usr/bin/mirrorctl" 2>&1)
  grep -Eq 'not a dynamic executable|statically linked' <<<"$l" || { echo "$l"; echo "usr/bin/mirrorctl is dynamically linked"; return 1; }
  echo "usr/bin/mirrorctl is static"
}

pkg_rpm_meta() {  # pkg_rpm_meta RPM
  local out
  rpm -qip "$1" || return 1
  out=$(rpm -qlp "$1") || return 1
  for p in /usr/bin/mirrorctl /usr/lib/systemd/system/mirrorctl.service /usr/lib/systemd/system/mirrorctl-sync.service \
      /etc/mirrorctl/config.yaml /usr/share/man/man1/mirrorctl.1.gz /usr/share/bash-completion/completions/mirrorctl; do
    grep -qxF "$p" <<<"$out" || { echo "rpm -qlp lacks $p"; return 1; }
  done
  out=$(rpm -qp --scripts "$1") || return 1
  grep -q 'systemctl enable mirrorctl-sync.service' <<<"$out" || { echo "%post does not enable mirrorctl-sync.service"; echo "$out"; return 1; }
  local cmds; cmds=$(grep -v '^[[:space:]]*#' <<<"$out")
  if grep -Eq 'restart|systemctl( --[a-z-]+)* start ' <<<"$cmds"; then echo "a scriptlet starts or restarts a unit:"; echo "$out"; return 1; fi
  out=$(rpm -qp --configfiles "$1") || return 1
  grep -qx /etc/mirrorctl/config.yaml <<<"$out" || { echo "config.yaml is not %config: $out"; return 1; }
  rpm -K --nosignature "$1"
}

sc_package_files() {
  check "make package built the .deb and .rpm for amd64 and arm64" pkg_need || return
  local a deb rpm
  for a in amd64 arm64; do
    deb=$(pkg_deb $a)
    check "dpkg-deb -c ${deb##*/}: binary, units, conffile, man pages, completions, copyright, changelog" pkg_deb_lists "$deb"
  done
  deb=$(pkg_deb amd64)
  check "${deb##*/}: /etc/mirrorctl/config.yaml is a conffile; the binary is static" pkg_deb_meta "$deb"
  check "lintian --fail-on error,warning ${deb##*/}" lintian --fail-on error,warning "$deb"
  for a in x86_64 aarch64; do
    rpm=$(pkg_rpm $a)
    check "rpm -qip/-qlp/--scripts/--configfiles/-K ${rpm##*/}" pkg_rpm_meta "$rpm"
  done
}

# ------------------------------------------------------------------ the node, across reboots
# pkg_node_root LABEL: an overlay over the cached rootfs kept in $E2E_WORK, so that what
# dpkg installs survives a reboot of the node (node_boot's --volatile=overlay would not).
pkg_node_root() {
  local base=$E2E_WORK/pkgnode/$1
  mkdir -p "$base/upper" "$base/work" "$base/merged" || return 1
  mount -t overlay "pkgnode-$1" -o "lowerdir=$NODE_ROOTFS,upperdir=$base/upper,workdir=$base/work" "$base/merged" || return 1
  PKG_ROOTFS=$base/merged
}

pkg_node_root_done() { [ -n "${PKG_ROOTFS:-}" ] && umount "$PKG_ROOTFS" 2>/dev/null; PKG_ROOTFS=; }

# pkg_boot LABEL [nspawn args]: node_boot on the persistent root (the later --volatile wins).
# systemd.show_status=false: node_boot's --console=passive pty is never read, and a boot job
# that runs for more than ~20 s fills it with "A start job is running" lines until PID 1
# blocks in write(2) on the console (seen here: systemctl then fails with "Transport endpoint
# is not connected"). Every node_boot with a slow boot job needs it.
pkg_boot() {
  local label=$1 out=$E2E_WORK/scen/pkg-boot-$1.out; shift
  mkdir -p "${out%/*}"
  if NODE_ROOTFS=$PKG_ROOTFS node_boot "$label" --volatile=no "$@" systemd.show_status=false >"$out" 2>&1; then
    cat "$out" >>"$SCEN_LOG"
    pass "node boots to 'running' ($(grep -o "after [0-9.]*s" "$out"))"
    return 0
  fi
  cat "$out" >>"$SCEN_LOG"
  fail "node boots to 'running'"; tail -n 20 "$out" | sed 's/^/      | /'
  node_shutdown
  return 1
}

pkg_collect() { node_journal containerd.service mirrorctl-sync.service mirrorctl.service mirrorctl-cloud-init.service cloud-init.service; }

# pkg_before A B: unit A's main process exited before unit B's started (this boot).
pkg_before() {
  local a b
  a=$(node_prop "$1" ExecMainExitTimestampMonotonic) b=$(node_prop "$2" ExecMainStartTimestampMonotonic)
  echo "$1 exited at ${a:-?} us, $2 started at ${b:-?} us (monotonic)"
  [ "${a:-0}" -gt 0 ] && [ "${b:-0}" -gt 0 ] && [ "$a" -le "$b" ]
}

pkg_unit_ok() {  # pkg_unit_ok UNIT: a oneshot that ran and succeeded
  local r s
  r=$(node_prop "$1" Result) s=$(node_prop "$1" ExecMainStatus)
  echo "$1: Result=$r ExecMainStatus=$s ActiveState=$(node_prop "$1" ActiveState)"
  [ "$r" = success ] && [ "$s" = 0 ]
}

pkg_same() { [ "$1" = "$2" ] || { echo "$3: $1 -> $2"; return 1; }; echo "$3 unchanged ($1)"; }

# pkg_engine_files: the engines' files in the node, with their hashes.
pkg_engine_files() { node_sh sh -c 'find /etc/containerd /etc/crictl.yaml -type f -exec sha256sum {} + 2>/dev/null | sort'; }

# pkg_pids UNIT...: their MainPIDs, one line.
pkg_pids() { local u; for u in "$@"; do printf '%s=%s ' "$u" "$(node_prop "$u" MainPID)"; done; }

# pkg_pids_same "$(pkg_pids UNIT...)" UNIT...: nothing was restarted since.
pkg_pids_same() { local was=$1 now; shift; now=$(pkg_pids "$@"); pkg_same "$was" "$now" MainPIDs; }

pkg_pid_changed() {  # pkg_pid_changed UNIT OLD
  local now; now=$(node_prop "$1" MainPID)
  echo "$1 MainPID $2 -> $now"; [ "$now" != "$2" ] && [ "$now" != 0 ]
}

pkg_enabled() {  # pkg_enabled UNIT STATE: systemctl is-enabled prints STATE
  local s; s=$(node_sh systemctl is-enabled "$1" 2>&1)
  echo "$1: $s"; [ "$s" = "$2" ]
}

pkg_not_enabled() { local s; s=$(node_sh systemctl is-enabled "$1" 2>&1); echo "$1: $s"; [ "$s" != enabled ]; }

# (output captured before grep -q: the harness runs with pipefail, and an early exit of
# grep -q would fail the producer with SIGPIPE)
pkg_conffile() { local c; c=$(node_sh dpkg-query -W -f='${Conffiles}\n' mirrorctl) || return 1; echo "$c"; grep -q " $1 " <<<"$c"; }

pkg_journal_has() { local j; j=$(node_sh journalctl -b --no-pager -u "$1") || return 1; grep -Eq "$2" <<<"$j"; }

pkg_inactive() { local s; s=$(node_prop "$1" ActiveState); echo "$1: $s"; [ "$s" != active ]; }

# pkg_repack IN OUT: IN with its version bumped and a changed shipped config.yaml (an upgrade).
pkg_repack() {
  local d=$E2E_WORK/pkg/repack v
  # $E2E_WORK/pkg is made by package/files; create it here too, so that
  # E2E_ONLY=package/node works on its own.
  rm -rf "$d" && mkdir -p "$(dirname "$d")" "$(dirname "$2")" && dpkg-deb -R "$1" "$d" || return 1
  v=$(dpkg-deb -f "$1" Version)+e2e
  sed -i "s/^Version: .*/Version: $v/" "$d/DEBIAN/control"
  printf '# shipped by %s: the default changed\n' "$v" >>"$d/etc/mirrorctl/config.yaml"
  (cd "$d" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums) || return 1
  dpkg-deb -b --root-owner-group "$d" "$2" >/dev/null && echo "$2: version $v"
}

pkg_watch_started() {  # systemctl start returns once mirrorctl.service sent READY=1
  local t; t=$(now_ms)
  node_sh timeout 300 systemctl start mirrorctl.service || { node_sh systemctl status --no-pager mirrorctl.service; return 1; }
  echo "systemctl start mirrorctl.service returned after $(secs_since "$t")"
  [ "$(node_prop mirrorctl.service ActiveState)" = active ] && [ "$(node_prop mirrorctl.service Type)" = notify ]
}

sc_package_node() {
  local deb d=$E2E_WORK/scen/package_node
  deb=$(pkg_deb amd64)
  [ -n "$deb" ] || { fail "no amd64 .deb in $PKG_DIST (run make package)"; return; }
  mkdir -p "$d"
  SCEN_LOG_HOOK=pkg_collect
  pkg_node_root pkg || { fail "persistent overlay for the node"; return; }

  # ---- boot 1: install
  pkg_boot pkg || { pkg_node_root_done; return; }
  SCEN_LOGS=("$NODE_DIR/journal.log")
  SCEN_FILES=("$NODE_DIR/etc-mirrorctl" "$NODE_DIR/etc-snapshot")
  check "containerd.service is active" node_wait_active containerd.service
  cp "$deb" "$PKG_ROOTFS/var/tmp/" || { fail "copy the .deb into the node"; node_shutdown; pkg_node_root_done; return; }
  local pids
  pids=$(pkg_pids containerd.service docker.service)
  check "dpkg -i ${deb##*/} in the node" node_sh dpkg -i "/var/tmp/${deb##*/}" || { node_shutdown; pkg_node_root_done; return; }
  check "installing restarted no engine (containerd and docker MainPID unchanged)" pkg_pids_same "$pids" containerd.service docker.service
  check "postinst enabled mirrorctl-sync.service" pkg_enabled mirrorctl-sync.service enabled
  check "mirrorctl.service is installed disabled" pkg_enabled mirrorctl.service disabled
  check "systemd-analyze verify accepts both units" node_sh systemd-analyze verify --man=no /lib/systemd/system/mirrorctl.service /lib/systemd/system/mirrorctl-sync.service
  check "dpkg registered /etc/mirrorctl/config.yaml as a conffile" pkg_conffile /etc/mirrorctl/config.yaml
  check "the shipped config.yaml changes nothing (plan --exit-code)" node_sh /usr/bin/mirrorctl plan --exit-code
  check "man mirrorctl-sync and bash completion are installed" node_sh test -s /usr/share/man/man1/mirrorctl-sync.1.gz -a -s /usr/share/bash-completion/completions/mirrorctl

  # The administrator writes the spec (not applied now: the next boot does it).
  printf '%s\n' "$REG_PASS" >"$NODE_DIR/etc-mirrorctl/registry-password"
  chmod 0600 "$NODE_DIR/etc-mirrorctl/registry-password"
  { spec_mirrors registry-password; spec_engines true false false true; } >"$NODE_DIR/etc-mirrorctl/config.yaml"
  check "the new spec validates in the node" node_sh /usr/bin/mirrorctl validate
  node_shutdown

  # ---- boot 2: mirrorctl-sync.service before the engines
  pkg_boot pkg || { pkg_node_root_done; return; }
  check "mirrorctl-sync.service ran at boot and succeeded" pkg_unit_ok mirrorctl-sync.service
  check "mirrorctl-sync.service finished before containerd.service started" pkg_before mirrorctl-sync.service containerd.service
  check "the boot sync wrote the engines' files (its journal)" pkg_journal_has mirrorctl-sync.service 'wrote [0-9]+ file'
  check "containerd answers on its socket" node_wait_socket
  check "CRI plugin reports ok" node_plugins_ok
  check "the first crictl pull after boot goes through the auth mirror" \
    node_cri_pull_via "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "nothing pending after the boot sync (plan --exit-code)" node_sh /usr/bin/mirrorctl plan --exit-code

  # ---- mirrorctl.service (watch): READY only after its first sync. The spec moves the
  # credentials from config.toml to a hosts.toml header: config.toml changes, so the
  # hardened unit must restart containerd through systemd's D-Bus API.
  { spec_mirrors registry-password; spec_engines true false false true header; } >"$NODE_DIR/etc-mirrorctl/config.yaml"
  local c0
  c0=$(node_prop containerd.service MainPID)
  check "systemctl start mirrorctl.service returns after READY=1 (Type=notify)" pkg_watch_started
  check "at READY the first sync was done: nothing pending (plan --exit-code)" node_sh /usr/bin/mirrorctl plan --exit-code
  check "the watch restarted containerd over D-Bus from inside its sandbox" pkg_pid_changed containerd.service "$c0"
  check "containerd's CRI plugin is ok after the watch's restart" node_plugins_ok
  check "crictl pull docker.io/test:latest goes through the mirror (header credentials)" \
    node_cri_pull_via "$REG_LOG_AUTH" docker.io test:latest

  # ---- upgrade: the administrator's config.yaml stays, the new default lands beside it
  local v2=$PKG_ROOTFS/var/tmp/mirrorctl-upgrade.deb before after
  check "build an upgrade .deb with a changed shipped config.yaml" pkg_repack "$deb" "$v2"
  before=$(sha256sum <"$NODE_DIR/etc-mirrorctl/config.yaml")
  pids=$(pkg_pids containerd.service mirrorctl.service)
  check "dpkg -i --force-confdef --force-confold (the upgrade, as apt runs it unattended)" \
    node_sh dpkg -i --force-confdef --force-confold /var/tmp/mirrorctl-upgrade.deb
  after=$(sha256sum <"$NODE_DIR/etc-mirrorctl/config.yaml")
  check "the upgrade kept the administrator's config.yaml" pkg_same "$before" "$after" config.yaml
  check "the new shipped config.yaml is beside it as config.yaml.dpkg-dist" grep -q 'the default changed' "$NODE_DIR/etc-mirrorctl/config.yaml.dpkg-dist"
  check "the upgrade restarted neither containerd nor mirrorctl.service" pkg_pids_same "$pids" containerd.service mirrorctl.service

  # ---- remove: the engines stay as the last sync left them
  local e0 e1
  e0=$(pkg_engine_files)
  pids=$(pkg_pids containerd.service)
  check "dpkg -r mirrorctl" node_sh dpkg -r mirrorctl
  e1=$(pkg_engine_files)
  check "dpkg -r left the engines' files as the last sync left them" pkg_same "$(sha256sum <<<"$e0")" "$(sha256sum <<<"$e1")" "/etc/containerd and /etc/crictl.yaml"
  check "dpkg -r stopped mirrorctl.service" pkg_inactive mirrorctl.service
  check "dpkg -r restarted no engine" pkg_pids_same "$pids" containerd.service
  check "mirrorctl-sync.service will not run at the next boot" pkg_not_enabled mirrorctl-sync.service
  check "dpkg -r kept the conffile and mirrorctl's state" node_sh test -f /etc/mirrorctl/config.yaml -a -f /var/lib/mirrorctl/state.json

  # ---- purge: mirrorctl's state goes, the engines' files stay
  check "dpkg --purge mirrorctl" node_sh dpkg --purge mirrorctl
  check "dpkg --purge removed /var/lib/mirrorctl" node_sh sh -c '! test -e /var/lib/mirrorctl'
  e1=$(pkg_engine_files)
  check "dpkg --purge left the engines' files alone" pkg_same "$(sha256sum <<<"$e0")" "$(sha256sum <<<"$e1")" "/etc/containerd and /etc/crictl.yaml"
  node_shutdown
  pkg_node_root_done
}

# ------------------------------------------------------------------ package/cloud-init
# pkg_ci_script USER_DATA OUT: cloud-init's init stage as a shell script, made with
# cloud-init's own code: bootcmd shellified as cc_bootcmd does, then write_files decoded
# as cc_write_files does (b64, gz+b64; permissions; owner), in that order.
pkg_ci_script() {
  /usr/bin/python3 - "$1" >"$2" <<'EOF'
import base64, os, shlex, sys
from cloudinit import util
from cloudinit.config import cc_write_files as wf
cfg = util.load_yaml(open(sys.argv[1]).read())
out = ["#!/bin/sh", "# e2e stand-in for cloud-init's init stage: bootcmd, then write_files", "set -e",
       "cat > /run/e2e-bootcmd.sh <<'E2E_BOOTCMD'", util.shellify(cfg.get("bootcmd", [])).rstrip("\n"), "E2E_BOOTCMD",
       "/bin/sh /run/e2e-bootcmd.sh"]
for f in cfg.get("write_files", []):
    data = wf.extract_contents(f.get("content", ""), wf.canonicalize_extraction(f.get("encoding")))
    if isinstance(data, str):
        data = data.encode()
    p = os.path.abspath(f["path"])
    perms = wf.decode_perms(f.get("permissions"), wf.DEFAULT_PERMS)
    out += ["mkdir -p " + shlex.quote(os.path.dirname(p)),
            "base64 -d > %s <<'E2E_FILE'" % shlex.quote(p), base64.encodebytes(data).decode().rstrip("\n"), "E2E_FILE",
            "chmod %o %s" % (perms, shlex.quote(p)), "chown %s %s" % (shlex.quote(f.get("owner", "root:root")), shlex.quote(p))]
print("\n".join(out))
EOF
}

pkg_ci_unit() {
  cat <<'EOF'
[Unit]
Description=e2e stand-in for cloud-init.service (init stage: bootcmd, then write_files)
DefaultDependencies=no
After=local-fs.target systemd-remount-fs.service
Before=sysinit.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh /e2e-cloud-init/init-stage.sh
EOF
}

pkg_schema() { cloud-init schema --config-file "$1"; }

# pkg_ci_generate DIR ARGS...: mirrorctl cloud-init ARGS > DIR/user-data, stderr kept in DIR/stderr.
pkg_ci_generate() {
  local d=$1 rc; shift
  "$MIRRORCTL" cloud-init "$@" >"$d/user-data" 2>"$d/stderr"; rc=$?
  cat "$d/stderr"
  return $rc
}

pkg_installed() { node_sh dpkg -s mirrorctl | grep -x 'Status: install ok installed'; }

pkg_stat() {  # pkg_stat PATH MODE (in the node)
  local m; m=$(node_sh stat -c %a "$1") || return 1
  echo "$1: $m"; [ "$m" = "$2" ]
}

sc_package_cloud_init() {
  local d=$E2E_WORK/scen/package_cloud-init deb ex
  deb=$(pkg_deb amd64)
  [ -n "$deb" ] || { fail "no amd64 .deb in $PKG_DIST (run make package)"; return; }
  mkdir -p "$d/ci"
  SCEN_LOG_HOOK=pkg_collect
  # The spec names its password relative to itself: on the node, /etc/mirrorctl/registry-password.
  { spec_mirrors registry-password; spec_engines true false false true; } >"$d/spec.yaml"
  check "mirrorctl cloud-init --config spec.yaml --secret registry-password=... --package ${deb##*/}" \
    pkg_ci_generate "$d" --config "$d/spec.yaml" --secret "registry-password=$PASS_FILE" --package "$deb" || return
  check "it warned on stderr that the user-data holds a secret the metadata service serves" grep -q 'metadata service' "$d/stderr"
  check "cloud-init schema --config-file accepts the generated user-data ($(( $(stat -c %s "$d/user-data") / 1024 )) KiB)" pkg_schema "$d/user-data"
  for ex in "$REPO"/packaging/cloud-init/*.yaml; do
    check "cloud-init schema accepts packaging/cloud-init/${ex##*/}" pkg_schema "$ex"
  done
  check "convert the user-data into the init stage's commands with cloud-init's own modules" pkg_ci_script "$d/user-data" "$d/ci/init-stage.sh" || return
  pkg_ci_unit >"$d/ci/cloud-init.service"

  local out=$E2E_WORK/scen/pkg-boot-ci.out
  if ! node_boot ci "--bind-ro=$d/ci:/e2e-cloud-init" "--bind-ro=$d/ci/cloud-init.service:/etc/systemd/system/cloud-init.service" \
      --bind-ro=/usr/bin/cloud-init-per:/usr/bin/cloud-init-per systemd.wants=cloud-init.service systemd.show_status=false >"$out" 2>&1; then
    cat "$out" >>"$SCEN_LOG"
    fail "node boots to 'running' with the user-data"; tail -n 20 "$out" | sed 's/^/      | /'
    node_sh systemctl status --no-pager cloud-init.service mirrorctl-cloud-init.service 2>&1 | tail -n 30 | sed 's/^/      | /'
    node_shutdown; return
  fi
  cat "$out" >>"$SCEN_LOG"
  pass "node boots to 'running' with the user-data ($(grep -o "after [0-9.]*s" "$out"))"
  SCEN_LOGS=("$NODE_DIR/journal.log")
  SCEN_FILES=("$NODE_DIR/etc-mirrorctl" "$NODE_DIR/etc-snapshot")
  check "the init stage (bootcmd, write_files) ran" pkg_unit_ok cloud-init.service
  check "bootcmd queued mirrorctl-cloud-init.service, which succeeded" pkg_unit_ok mirrorctl-cloud-init.service
  check "it started after the init stage had written the files" pkg_before cloud-init.service mirrorctl-cloud-init.service
  check "it finished before containerd.service started" pkg_before mirrorctl-cloud-init.service containerd.service
  check "write_files: /etc/mirrorctl/config.yaml is 0644" pkg_stat /etc/mirrorctl/config.yaml 644
  check "write_files: /etc/mirrorctl/registry-password is 0600" pkg_stat /etc/mirrorctl/registry-password 600
  check "write_files: the password file holds the password, byte for byte" cmp "$PASS_FILE" "$NODE_DIR/etc-mirrorctl/registry-password"
  check "the package is installed" pkg_installed
  check "dpkg kept the spec write_files put there (--force-confold)" cmp "$d/spec.yaml" "$NODE_DIR/etc-mirrorctl/config.yaml"
  check "mirrorctl-sync.service is enabled for the next boots" pkg_enabled mirrorctl-sync.service enabled
  check "containerd answers on its socket" node_wait_socket
  check "CRI plugin reports ok" node_plugins_ok
  check "the first crictl pull goes through the auth mirror" \
    node_cri_pull_via "$REG_LOG_AUTH" registry.example.invalid "registry.example.invalid/$IMAGE_REPO:$IMAGE_TAG"
  check "nothing pending (plan --exit-code)" node_sh /usr/bin/mirrorctl plan --exit-code
  node_shutdown
}

# ------------------------------------------------------------------ package/image
pkg_image_platforms() {  # pkg_image_platforms LAYOUT: one index, for amd64 and arm64
  local l=$1 idx archs
  jq -e '.manifests | length == 1' "$l/index.json" >/dev/null || { echo "$l/index.json: want one index"; return 1; }
  idx=$(jq -r '.manifests[0].digest' "$l/index.json")
  archs=$(jq -r '.manifests[].platform.architecture' "$l/blobs/sha256/${idx#sha256:}" | sort | tr '\n' ' ')
  echo "platforms: $archs"
  [ "$archs" = "amd64 arm64 " ]
}

# pkg_image_binary LAYOUT: the amd64 binary out of the OCI layout's layer, run.
pkg_image_binary() {
  local l=$1 idx man layer out=$E2E_WORK/pkg/image-mirrorctl
  idx=$(jq -r '.manifests[0].digest' "$l/index.json") || return 1
  man=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$l/blobs/sha256/${idx#sha256:}") || return 1
  layer=$(jq -r '.layers[0].digest' "$l/blobs/sha256/${man#sha256:}") || return 1
  mkdir -p "${out%/*}"
  tar -xzOf "$l/blobs/sha256/${layer#sha256:}" usr/bin/mirrorctl >"$out" && chmod 0755 "$out" || return 1
  local v; v=$("$out" version) || return 1
  echo "$v"; grep -q '^mirrorctl ' <<<"$v"
}

pkg_crane_export() {  # pkg_crane_export REF: the binary from the pushed image runs
  local out=$E2E_WORK/pkg/image-mirrorctl-pulled
  crane_ export --platform linux/amd64 "$1" - | tar -xO usr/bin/mirrorctl >"$out" && chmod 0755 "$out" || return 1
  local v; v=$("$out" version) || return 1
  echo "$v"; grep -q '^mirrorctl ' <<<"$v"
}

pkg_ctr_run() {  # pkg_ctr_run REF: the image starts in containerd and prints its version
  local out
  out=$(ctr_ run --rm "$1" "mirrorctl-e2e-$$" 2>&1); local rc=$?
  echo "$out"
  [ $rc = 0 ] && grep -q '^mirrorctl ' <<<"$out"
}

sc_package_image() {
  local l=$PKG_DIST/image ref=$REG_OPEN/mirrorctl:e2e
  check "make image wrote an OCI layout with linux/amd64 and linux/arm64" pkg_image_platforms "$l" || return
  check "the binary in the image's amd64 layer runs: mirrorctl version" pkg_image_binary "$l"
  check "crane push --index the layout to the local registry ($ref)" crane_ push --index "$l" "$ref" || return
  check "the image pulled back from the registry holds a working binary" pkg_crane_export "$ref"
  use_containerd 1.6 || { fail "use containerd 1.6 binaries"; return; }
  fresh_state "${CURRENT_SCENARIO//\//_}" || { fail "fresh node state"; return; }
  ctrd_start || { fail "containerd 1.6 starts" "$CTRD_LOG"; return; }
  SCEN_LOGS=("$CTRD_LOG")
  check "ctr image pull --plain-http $ref" ctr_ image pull --plain-http "$ref" || { ctrd_stop; return; }
  if check "ctr run: the image starts and prints mirrorctl version" pkg_ctr_run "$ref"; then :; else
    info "ctr run failed on this host (see above); the binary from the same image ran (previous checks)"
  fi
  check "ctr image import dist/mirrorctl-image.tar (the daemon-less tar of the layout)" ctr_ image import --platform linux/amd64 "$PKG_DIST/mirrorctl-image.tar"
  ctrd_stop
}
