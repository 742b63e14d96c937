package spec

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

func (p *parser) mirrors(s *Spec, n *yaml.Node) {
	if !p.mapping(n, "mirrors") {
		return
	}
	for _, e := range p.pairs(n) {
		if msg, hint := checkHost(e.k.Value); msg != "" {
			p.errorf(e.k, hint, "mirrors: registry %s", msg)
		}
		// A later file's entry replaces the whole entry (drop-in rule).
		s.Mirrors[e.k.Value] = p.mirror(e.k, e.v)
	}
}

func (p *parser) mirror(k, v *yaml.Node) *Mirror {
	m := &Mirror{Pos: p.pos(k)}
	p.fields(v, "mirrors."+redactURL(k.Value), []field{
		{"endpoint", func(_, v *yaml.Node) { m.Endpoints, m.EndpointPos, m.Notes = p.endpoints(v) }},
		{"rewrite", func(_, v *yaml.Node) { m.Rewrites = p.rewrites(v) }},
		{"capabilities", func(_, v *yaml.Node) { m.Capabilities = p.capabilities(v) }},
		{"upstream_fallback", func(_, v *yaml.Node) {
			if b, ok := p.boolean(v, "upstream_fallback"); ok {
				m.UpstreamFallback = &b
			}
		}},
		{"dial_timeout", func(_, v *yaml.Node) { m.DialTimeout = p.dialTimeout(v) }},
	})
	return m
}

func (p *parser) endpoints(n *yaml.Node) ([]string, []Pos, []Note) {
	vals, nodes, _ := p.strList(n, "endpoint", `write endpoint: ["https://mirror.example.com"]`)
	var poss []Pos
	var notes []Note
	seen := map[string]*yaml.Node{}
	for i, raw := range vals {
		node := nodes[i]
		poss = append(poss, p.pos(node))
		msg, hint := checkEndpoint(raw)
		if msg != "" {
			p.errorf(node, hint, "endpoint %q: %s", redactURL(raw), msg)
			continue
		}
		e, err := ParseEndpoint(raw)
		if err != nil {
			p.errorf(node, "", "endpoint %q: %v", redactURL(raw), err)
			continue
		}
		key := e.URL.String()
		if first, dup := seen[key]; dup {
			// k3s de-duplicates after normalising, silently; any
			// registries.yaml k3s takes is a spec, so this is a note.
			notes = append(notes, Note{Pos: p.pos(node), Message: fmt.Sprintf(
				"endpoint %q is the same as %q at %s (%s): engines use it once; remove one of them",
				redactURL(raw), redactURL(first.Value), p.pos(first), redactURL(key))})
			continue
		}
		seen[key] = node
		if e.OverridePath && !strings.HasSuffix(strings.TrimSuffix(e.URL.Path, "/"), "/v2") {
			notes = append(notes, Note{Pos: p.pos(node), Message: pathNote(e)})
		}
	}
	return vals, poss, notes
}

// pathNote explains an endpoint path that does not end in /v2: engines
// use it verbatim as the API root, which a registry's web UI path (Nexus
// /repository/<name>/) is not.
func pathNote(e Endpoint) string {
	meant := *e.URL
	meant.Path = strings.TrimSuffix(meant.Path, "/") + "/v2"
	return fmt.Sprintf("endpoint %s has a path that does not end in /v2: containerd and k3s use it as the API root and "+
		"request %s/<repository>/manifests/<tag>; a registry behind a path usually serves %s",
		redactURL(e.URL.String()), redactURL(e.APIRoot()), redactURL(meant.String()))
}

// checkEndpoint checks a mirror endpoint the way k3s reads it (host,
// host:port or http(s)://host[:port][/path]): a message and a hint, or
// "". Neither ever contains the userinfo of the URL.
func checkEndpoint(raw string) (msg, hint string) {
	const example = "write a URL such as https://mirror.example.com or https://nexus.example.com/repository/docker-proxy/v2"
	if raw == "" {
		return "empty endpoint", example
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return "contains whitespace", example
	}
	if strings.Contains(raw, "@") {
		return "credentials must not be in the URL",
			"remove user:password@ and put them under configs.<host>.auth, with the password in a password_file"
	}
	full := raw
	if i := strings.Index(raw, "://"); i >= 0 {
		if s := strings.ToLower(raw[:i]); s != "http" && s != "https" {
			return fmt.Sprintf("scheme %q is not supported", raw[:i]), "use https:// (or http:// for a plain-HTTP mirror)"
		}
	} else {
		full = "https://" + raw // what k3s does with a bare host
	}
	u, err := url.Parse(full)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err.Error(), example
	}
	switch {
	case u.RawQuery != "" || u.ForceQuery:
		return "must not have a query string", "remove the ?… part; engines add their own query (?ns=<registry>)"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not have a fragment", "remove the #… part"
	case u.Hostname() == "":
		return "has no host", example
	}
	if m, h := checkHost(u.Host); m != "" {
		return "host " + m, h
	}
	return "", ""
}

// redactURL hides anything that could be userinfo in a URL as written.
func redactURL(raw string) string {
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + 3
	}
	if at := strings.LastIndex(raw, "@"); at >= start {
		return raw[:start] + "***" + raw[at:]
	}
	return raw
}

// CheckHost checks a registry name or config host, wherever it comes from
// (the spec, or keys of an engine's existing file): "*" or host[:port], with
// IPv6 addresses in brackets; never ".", "..", "_default" or anything with a
// path separator, since engines turn it into a directory name.
func CheckHost(s string) error {
	if msg, hint := checkHost(s); msg != "" {
		if hint != "" {
			return fmt.Errorf("%s; %s", msg, hint)
		}
		return errors.New(msg)
	}
	return nil
}

// checkHost is CheckHost for the parser: a message and a hint, or "".
func checkHost(s string) (msg, hint string) {
	if s == "*" {
		return "", ""
	}
	if s == "" {
		return "name is empty", `write a host such as docker.io, registry.example.com:5000 or "*"`
	}
	if i := strings.Index(s, "://"); i >= 0 {
		return fmt.Sprintf("%q must not have a scheme", redactURL(s)), "write the host only: " + hostOf(s)
	}
	if strings.Contains(s, "@") {
		return fmt.Sprintf("%q must not contain credentials", redactURL(s)), "put them under configs.<host>.auth"
	}
	if strings.ContainsAny(s, "/?#") {
		return fmt.Sprintf("%q must be a host[:port], not a URL path", s),
			"write the host only: " + hostOf(s) + "; mirror paths go in endpoint URLs"
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		h, p, err := net.SplitHostPort(s)
		switch {
		case err == nil:
			host, port = h, p
		case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
			host = s[1 : len(s)-1]
		default:
			return fmt.Sprintf("%q is not host[:port]", s), "write host or host:port"
		}
	} else if strings.Contains(s, ":") {
		return fmt.Sprintf("%q is not host[:port]", s), "put IPv6 addresses in brackets: [fd00::1]:5000"
	}
	if port == "" && strings.HasSuffix(s, ":") {
		return fmt.Sprintf("%q has an empty port", s), "write host or host:port"
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%q has an invalid port", s), "a port is a number from 1 to 65535"
		}
	}
	if strings.Contains(host, ":") {
		if net.ParseIP(host) == nil {
			return fmt.Sprintf("%q is not a valid IPv6 address", s), ""
		}
		return "", ""
	}
	if host == "" {
		return fmt.Sprintf("%q has no host", s), "write host or host:port"
	}
	// The name becomes a directory (certs.d/<name>): ".", ".." and
	// containerd's fallback directory "_default" would land elsewhere.
	if strings.HasPrefix(host, "_") {
		return fmt.Sprintf("%q is not a host name", s), `a host name starts with a letter or digit; for every registry write "*"`
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" {
			return fmt.Sprintf("%q has an empty label (leading, trailing or double dot)", s), "write a host such as registry.example.com"
		}
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Sprintf("%q contains %q", s, c), "a host name has letters, digits, dots and dashes"
		}
	}
	return "", ""
}

// hostOf strips a scheme, userinfo and path, for "write this instead" hints.
func hostOf(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func (p *parser) rewrites(n *yaml.Node) map[string]string {
	if !p.mapping(n, "rewrite") {
		return nil
	}
	out := map[string]string{}
	for _, e := range p.pairs(n) {
		if err := p.compile(e.k.Value); err != nil {
			p.errorf(e.k, "rewrites are Go (RE2) regular expressions: no lookaround or backreferences", "rewrite: %v", err)
		}
		if r, ok := p.str(e.v, "rewrite replacement", `write "^library/(.*)": "mirror/$1"`); ok {
			out[e.k.Value] = r
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// compile checks a rewrite pattern, once per pattern: a mirror entry shared
// through an alias is read once per alias, and compiling is the costly part.
func (p *parser) compile(pattern string) error {
	if err, ok := p.regexps[pattern]; ok {
		return err
	}
	_, err := regexp.Compile(pattern)
	if p.regexps == nil {
		p.regexps = map[string]error{}
	}
	p.regexps[pattern] = err
	return err
}

func (p *parser) capabilities(n *yaml.Node) []string {
	const hint = "write a subset of [pull, resolve, push]"
	vals, nodes, ok := p.strList(n, "capabilities", hint)
	if !ok {
		return nil
	}
	if len(vals) == 0 {
		p.errorf(n, "remove the key for the default [pull, resolve]", "capabilities: empty list")
		return nil
	}
	seen := map[string]*yaml.Node{}
	for i, c := range vals {
		switch {
		case c != "pull" && c != "resolve" && c != "push":
			p.errorf(nodes[i], hint, "capabilities: unknown capability %q", c)
		case seen[c] != nil:
			p.errorf(nodes[i], "list it once", "capabilities: duplicate %q (first at %s)", c, p.pos(seen[c]))
		default:
			seen[c] = nodes[i]
		}
	}
	return vals
}

func (p *parser) dialTimeout(n *yaml.Node) time.Duration {
	const hint = `write a duration such as "3s" or "500ms"`
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.errorf(n, hint, "dial_timeout: expected a duration, got %s", kindOf(n))
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		p.errorf(n, hint, "dial_timeout: %q is not a duration", n.Value)
	case d <= 0:
		p.errorf(n, hint, "dial_timeout: must be positive")
	}
	return d
}
