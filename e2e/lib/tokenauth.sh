# shellcheck shell=bash
# The token-auth side of the mirror (issue 14), and the stand-ins doctor is proven against.
#
#   127.0.0.1:5002  CNCF distribution v3 (built, pinned in versions.sh) with `auth: token`,
#                   realm http://localhost:5003/token: the right user gets what it asks for,
#                   a request without credentials gets an anonymous token granting nothing
#   127.0.0.1:5004  the same storage, realm /token-deny: no token without credentials
#                   (Nexus with anonymous pull off)
#   127.0.0.1:5006  the same storage, realm /token-pull: anonymous pull allowed
#   127.0.0.1:5003  e2e/tokenserver's token service (ES256 JWT, x5c checked against the
#                   registries' rootcertbundle; GET with Basic and POST grant_type=password)
#   127.0.0.1:5010  a Nexus stand-in: /repository/hub/v2/ and /repository/group/v2/ (pushes
#                   refused as Nexus OSS refuses them for a group) proxy the open registry;
#                   every other path is Nexus's HTML 404
#   127.0.0.1:5011  a web UI: HTML, 200, for every path
#   127.0.0.1:5443  TLS in front of the open registry, certificate from the e2e's own CA
# The realm is named `localhost`, not 127.0.0.1: crane refuses a realm on a loopback IP.

TOKEN_REG=127.0.0.1:5002
TOKEN_REG_DENY=127.0.0.1:5004
TOKEN_REG_ANON=127.0.0.1:5006
TOKEN_SRV=127.0.0.1:5003
NEXUS=127.0.0.1:5010
WEBUI=127.0.0.1:5011
TLS_REG=127.0.0.1:5443
CLOSED=127.0.0.1:5099
TOKEN_SERVICE=mirrorctl-e2e-registry
TOKEN_ISSUER=mirrorctl-e2e-tokens

# tokenserver_ensure: e2e/tokenserver (its own module, standard library only), cached by a
# hash of its sources like k3scheck. Sets TOKENSERVER.
tokenserver_ensure() {
  local src=$E2E_DIR/tokenserver key
  key=$(cat "$src/go.mod" "$src"/*.go <(go version) | sha256sum | cut -c1-12)
  TOKENSERVER=$E2E_CACHE/tools/tokenserver-$key/tokenserver
  if [ -x "$TOKENSERVER" ]; then say "tool: tokenserver cached ($key)"; return 0; fi
  local d
  for d in "$E2E_CACHE"/tools/tokenserver-*; do [ -e "$d" ] && rm -rf "$d"; done
  mkdir -p "${TOKENSERVER%/*}"
  ( cd "$src" && timed "go build tokenserver" logged "$E2E_LOGS/tokenserver-build.log" \
      env GOFLAGS=-mod=readonly GOWORK=off CGO_ENABLED=0 go build -o "$TOKENSERVER.tmp" . ) &&
    mv "$TOKENSERVER.tmp" "$TOKENSERVER" || { show_tail "$E2E_LOGS/tokenserver-build.log"; return 1; }
}

# tokenauth_tools_ensure: the tokenserver (setup stage; the pinned distribution registry is
# one of go_tools_ensure's tools).
tokenauth_tools_ensure() { tokenserver_ensure; }

token_registry_config() {  # token_registry_config NAME ADDR REALM_PATH
  local dir=$E2E_WORK/registry/$1
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $E2E_WORK/registry/token-data
  delete:
    enabled: true
http:
  addr: $2
  secret: e2e-not-a-secret
auth:
  token:
    realm: http://localhost:${TOKEN_SRV##*:}$3
    service: $TOKEN_SERVICE
    issuer: $TOKEN_ISSUER
    rootcertbundle: $E2E_WORK/certs/jwt.crt
EOF
}

# tokenauth_start: everything above, the test image pushed to the token registry.
tokenauth_start() {
  local ts=$TOKENSERVER
  [ -x "$ts" ] || { echo "no tokenserver ($ts)"; return 1; }
  [ -x "$TOOLDIR_distribution/registry" ] || { echo "no distribution registry in $TOOLDIR_distribution"; return 1; }
  "$ts" certs "$E2E_WORK/certs" || return 1
  TOKEN_LOG=$E2E_LOGS/tokenserver.log
  NEXUS_LOG=$E2E_LOGS/nexus-standin.log
  spawn tokenserver "$TOKEN_LOG" "$ts" token -addr "$TOKEN_SRV" -key "$E2E_WORK/certs/jwt.key" -cert "$E2E_WORK/certs/jwt.crt" \
    -issuer "$TOKEN_ISSUER" -service "$TOKEN_SERVICE" -user "$REG_USER" -password-file "$PASS_FILE"
  local name addr realm
  for spec in "token $TOKEN_REG /token" "token-deny $TOKEN_REG_DENY /token-deny" "token-anon $TOKEN_REG_ANON /token-pull"; do
    read -r name addr realm <<<"$spec"
    token_registry_config "$name" "$addr" "$realm"
    spawn "registry-$name" "$E2E_LOGS/registry-$name.log" "$TOOLDIR_distribution/registry" serve "$E2E_WORK/registry/$name/config.yml"
  done
  REG_LOG_TOKEN=$E2E_LOGS/registry-token.log
  REG_LOG_TOKEN_ANON=$E2E_LOGS/registry-token-anon.log
  spawn nexus-standin "$NEXUS_LOG" "$ts" nexus -addr "$NEXUS" -upstream "http://$REG_OPEN" -repo hub -group group
  spawn webui-standin "$E2E_LOGS/webui-standin.log" "$ts" ui -addr "$WEBUI"
  spawn tls-front "$E2E_LOGS/tls-front.log" "$ts" tls -addr "$TLS_REG" -cert "$E2E_WORK/certs/server.crt" \
    -key "$E2E_WORK/certs/server.key" -upstream "http://$REG_OPEN"
  wait_until 20 curl -s -o /dev/null "http://$TOKEN_REG/v2/" && wait_until 20 curl -s -o /dev/null "http://$TOKEN_SRV/token" &&
    wait_until 20 curl -s -o /dev/null "http://$NEXUS/" && wait_until 20 curl -s -o /dev/null "http://$WEBUI/" &&
    wait_until 20 curl -s -o /dev/null --cacert "$E2E_WORK/certs/ca.crt" "https://$TLS_REG/v2/" &&
    wait_until 20 curl -s -o /dev/null "http://$TOKEN_REG_DENY/v2/" && wait_until 20 curl -s -o /dev/null "http://$TOKEN_REG_ANON/v2/"
}

# The token registry answers as distribution's token auth does, and the token service as meant.
tokenauth_ok() {
  local h c tok
  h=$(curl -s -D - -o /dev/null "http://$TOKEN_REG/v2/") || return 1
  grep -qi "^www-authenticate: Bearer realm=\"http://localhost:${TOKEN_SRV##*:}/token\",service=\"$TOKEN_SERVICE\"" <<<"$h" ||
    { echo "no Bearer challenge: $h"; return 1; }
  c=$(http_code -u "$REG_USER:wrong" "http://$TOKEN_SRV/token?service=$TOKEN_SERVICE&scope=repository:$IMAGE_REPO:pull") &&
    [ "$c" = 401 ] || { echo "wrong password: token HTTP $c (want 401)"; return 1; }
  c=$(http_code "http://$TOKEN_SRV/token-deny?service=$TOKEN_SERVICE&scope=repository:$IMAGE_REPO:pull") &&
    [ "$c" = 401 ] || { echo "anonymous on /token-deny: HTTP $c (want 401)"; return 1; }
  tok=$(curl -sf -u "$REG_USER:$REG_PASS" "http://$TOKEN_SRV/token?service=$TOKEN_SERVICE&scope=repository:$IMAGE_REPO:pull" | jq -r .token) ||
    { echo "no token for the right password"; return 1; }
  c=$(http_code -H "Authorization: Bearer $tok" "http://$TOKEN_REG/v2/") && [ "$c" = 200 ] ||
    { echo "the registry refuses the token service's token: HTTP $c (signature, x5c, iss or aud)"; return 1; }
  tok=$(curl -sf "http://$TOKEN_SRV/token?service=$TOKEN_SERVICE&scope=repository:$IMAGE_REPO:pull" | jq -r .token)
  c=$(http_code -I -H "Authorization: Bearer $tok" "http://$TOKEN_REG/v2/$IMAGE_REPO/manifests/$IMAGE_TAG") && [ "$c" = 401 ] ||
    { echo "an anonymous token pulls from $TOKEN_REG: HTTP $c (want 401 insufficient_scope)"; return 1; }
}

# The test image onto the token registry (crane: realm localhost is accepted).
tokenauth_push() {
  printf '%s\n' "$REG_PASS" | crane_ auth login "$TOKEN_REG" -u "$REG_USER" --password-stdin &&
    crane_ copy "$REG_OPEN/$IMAGE_REPO:$IMAGE_TAG" "$TOKEN_REG/$IMAGE_REPO:$IMAGE_TAG" || return 1
  local d1 d2
  d1=$(crane_ digest "$REG_OPEN/$IMAGE_REPO:$IMAGE_TAG") && d2=$(crane_ digest "$TOKEN_REG/$IMAGE_REPO:$IMAGE_TAG") &&
    [ "$d1" = "$d2" ] || { echo "digests differ: $d1 / $d2"; return 1; }
}

# token_log_since MARK: the token service's log lines since MARK.
token_requests_since() { log_since "$TOKEN_LOG" "$1" | grep -E ' (GET|POST) /token'; }

# tokenauth_wanted: a scenario that needs the token registry is selected (E2E_ONLY).
tokenauth_wanted() { tool_wanted distribution "$DISTRIBUTION_VERSION"; }

# sc_tokenauth: started once, like the mirror, for the scenarios that use it.
sc_tokenauth() {
  local t; t=$(now_ms)
  tokenauth_start >>"$SCEN_LOG" 2>&1 || { fail "token registry ($TOKEN_REG, $TOKEN_REG_DENY, $TOKEN_REG_ANON), token service and stand-ins start" \
    "$E2E_LOGS/tokenserver.log" "$E2E_LOGS/registry-token.log"; return 1; }
  pass "distribution $DISTRIBUTION_VERSION with token auth on $TOKEN_REG (+ $TOKEN_REG_DENY, $TOKEN_REG_ANON), token service, Nexus and UI stand-ins, TLS front up in $(secs_since "$t")"
  check "token registry: Bearer challenge; token service refuses a wrong password and anonymous on /token-deny; its token is accepted; an anonymous token cannot pull" tokenauth_ok || return 1
  check "test image copied to the token registry" tokenauth_push || return 1
}
