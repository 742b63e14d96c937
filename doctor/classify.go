package doctor

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/mirrorctl/mirrorctl/engines"
)

// classify turns what a manifest fetch observed into its likely cause and
// fix. The causes (stable identifiers) and fixes are listed in
// docs/doctor.md.
func classify(x *exchange) engines.Finding {
	f := x.final
	fail := func(cause, fix, format string, a ...any) engines.Finding {
		return engines.Finding{Level: engines.Fail, Cause: cause, Message: fmt.Sprintf(format, a...), Fix: fix}
	}
	switch {
	case f.err != nil:
		return requestFailed(x, f.err)
	case f.status == http.StatusBadRequest && strings.Contains(string(f.body), "HTTP request to an HTTPS server"):
		return fail("plain_http_to_tls", "write the endpoint with https://",
			"%s answers plain HTTP requests with %q: it serves TLS", x.host, "Client sent an HTTP request to an HTTPS server")
	case f.ok() && f.isHTML():
		return htmlPage(x)
	case f.ok():
		ct := f.header.Get("Content-Type")
		if f.header.Get("Docker-Content-Digest") == "" && !strings.Contains(ct, "manifest") && !strings.Contains(ct, "image.index") {
			return fail("not_a_manifest", "point the endpoint at the registry API",
				"%s answered 200 with %q, not a manifest", x.host, ct)
		}
		msg := fmt.Sprintf("%s serves %s", x.host, x.repo)
		if d := f.header.Get("Docker-Content-Digest"); d != "" {
			msg += " (" + d + ")"
		}
		return engines.Finding{Level: engines.OK, Cause: "ok", Message: msg}
	case f.status == http.StatusUnauthorized || (f.status == http.StatusForbidden && x.challenge != nil):
		return authFailure(x)
	case f.isHTML():
		return htmlPage(x)
	}
	code, msg, isReg := f.registryError()
	switch {
	case f.status == http.StatusNotFound && isReg && (code == "MANIFEST_UNKNOWN" || code == "NAME_UNKNOWN" || code == "NOT_FOUND"):
		return fail("image_not_found", "check the repository path (a Harbor proxy project needs <project>/ and library/; a mirror for one registry does not serve another's images)",
			"%s has no %s:%s (%s: %s)", x.host, x.repo, x.ref, code, msg)
	case f.status == http.StatusNotFound:
		return fail("not_api_root", "point the endpoint at the registry API root",
			"%s answers 404 without a registry error at %s: not a registry API root", x.host, orSlash(x.root))
	case f.status == http.StatusForbidden:
		if x.creds != "" {
			return fail("forbidden", "grant the user pull (read) on the repository", "%s refuses %s to %s (403 %s)", x.host, x.repo, x.creds, msg)
		}
		return fail("forbidden", "give the node credentials (configs), or allow anonymous pull", "%s refuses %s anonymously (403 %s)", x.host, x.repo, msg)
	case f.status == http.StatusTooManyRequests:
		return fail("rate_limited", "the mirror's upstream limits pulls: give the mirror an upstream login, or wait",
			"%s answers 429 (too many requests): %s", x.host, f.snippet())
	case f.status >= 500:
		return fail("server_error", "look at the mirror's log: a pull-through cache answers 5xx when it cannot reach its upstream",
			"%s answers %d: %s", x.host, f.status, f.snippet())
	}
	return fail("unexpected_status", "look at the mirror's log", "%s answers %d to a manifest request: %s", x.host, f.status, f.snippet())
}

func orSlash(s string) string {
	if s == "" {
		return "/"
	}
	return s
}

func htmlPage(x *exchange) engines.Finding {
	return engines.Finding{Level: engines.Fail, Cause: "html_page",
		Message: fmt.Sprintf("%s answers %d with an HTML page at %s: a web UI, not the registry API (engines fail with \"invalid character '<'\" or \"unexpected media type text/html\")",
			x.host, x.final.status, orSlash(x.root)),
		Fix: "use the registry API: the repository's Docker connector port, or its /repository/<name>/v2 path (Nexus); <harbor>/v2/<project> with override_path (Harbor)"}
}

// requestFailed classifies a request that got no answer: after the
// connection steps passed, a reset, a timeout, TLS on a plain port; through
// a proxy (where doctor does not connect by itself) also the certificate.
func requestFailed(x *exchange, err error) engines.Finding {
	msg := err.Error()
	var ne net.Error
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return certFinding(err, x.host, ua.Cert)
	case errors.As(err, &hn):
		return certFinding(err, x.host, hn.Certificate)
	case errors.As(err, &ci):
		return certFinding(err, x.host, ci.Cert)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return engines.Finding{Level: engines.Fail, Cause: "plain_http_port", Message: fmt.Sprintf("%s answers plain HTTP, not HTTPS", x.host),
			Fix: "write the endpoint with http://"}
	case errors.As(err, &ne) && ne.Timeout():
		return engines.Finding{Level: engines.Fail, Cause: "timeout", Message: fmt.Sprintf("%s did not answer in time: %v", x.host, err),
			Fix: "look at the mirror's load and its upstream"}
	}
	return engines.Finding{Level: engines.Fail, Cause: "request_failed", Message: fmt.Sprintf("request to %s failed: %v", x.host, err),
		Fix: "look at the mirror's log"}
}

// authFailure classifies a 401 (or a 403 after a challenge).
func authFailure(x *exchange) engines.Finding {
	ch := x.challenge
	fail := func(cause, fix, format string, a ...any) engines.Finding {
		return engines.Finding{Level: engines.Fail, Cause: cause, Message: fmt.Sprintf(format, a...), Fix: fix}
	}
	credsFix := fmt.Sprintf("give the node credentials: configs.%q.auth", x.host)
	switch {
	case ch == nil:
		return fail("unauthorized", credsFix, "%s answers %d without a challenge", x.host, x.final.status)
	case ch.Scheme == "basic" && x.creds != "":
		return fail("wrong_credentials", fmt.Sprintf("check the username and password (password_file) of %s", x.creds),
			"%s refuses %s (401, Basic realm %q)", x.host, x.creds, ch.Realm)
	case ch.Scheme == "basic":
		return fail("credentials_required", credsFix, "%s requires credentials (Basic realm %q) and none are sent", x.host, ch.Realm)
	case ch.Scheme != "bearer":
		return fail("unsupported_challenge", "", "%s asks for %q authentication, which engines do not speak", x.host, ch.Scheme)
	}
	realm := redactQuery(ch.Realm)
	switch {
	case x.tokenErr != nil && x.tokenAnswer == nil && !strings.HasPrefix(ch.Realm, "http"):
		return fail("realm_invalid", "fix the registry's base URL (Nexus: Base URL and X-Forwarded-Proto)", "%s names the token realm %q: %v", x.host, ch.Realm, x.tokenErr)
	case x.tokenAnswer != nil && x.tokenAnswer.err != nil:
		return fail("realm_unreachable", "the realm URL comes from the registry (its base URL, X-Forwarded-Host): it must be reachable from the node",
			"the node cannot reach the token realm %s of %s: %v", realm, x.host, x.tokenAnswer.err)
	case x.tokenAnswer != nil && !x.tokenAnswer.ok() && x.creds != "":
		return fail("wrong_credentials", fmt.Sprintf("check the username and password (password_file) of %s", x.creds),
			"the token realm %s refuses %s (%d)", realm, x.creds, x.tokenAnswer.status)
	case x.tokenAnswer != nil && !x.tokenAnswer.ok():
		return fail("anonymous_pull_off", anonymousFix(x.host),
			"%s wants a Bearer token and its realm %s refuses one without credentials (%d)", x.host, realm, x.tokenAnswer.status)
	case x.token == nil:
		return fail("token_failed", "look at the token service's log", "no token from %s: %v", realm, x.tokenErr)
	case x.creds == "":
		return fail("anonymous_pull_off", anonymousFix(x.host),
			"%s issues an anonymous token that does not allow pulling %s (%d with it)", realm, x.repo, x.final.status)
	case x.token.jwt && x.token.subject == "":
		return fail("anonymous_token", "the token service must accept these credentials (Basic auth on the realm); check the user",
			"the realm %s answered %s with an anonymous token that does not allow pulling %s: the credentials were replaced", realm, x.creds, x.repo)
	}
	return fail("no_pull_permission", "grant the user pull (read) on the repository",
		"the token %s issues for %s does not allow pulling %s (%d with it)", realm, x.creds, x.repo, x.final.status)
}

func anonymousFix(host string) string {
	return fmt.Sprintf("give the node credentials (configs.%q.auth), or allow anonymous pull (Nexus: activate the Docker Bearer Token Realm and tick \"Allow anonymous docker pull\"; Harbor: a public project)", host)
}
