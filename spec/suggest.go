package spec

import (
	"strings"
)

// keyAlias maps a key people write (from other tools, old k3s docs or
// memory) to the key we know, or returns "". An alias applies only where its
// target is a key of the mapping being read.
func keyAlias(key string) string {
	switch key {
	case "endpoints", "url", "urls":
		return "endpoint"
	case "rewrites":
		return "rewrite"
	case "capability":
		return "capabilities"
	case "fallback":
		return "upstream_fallback"
	case "timeout":
		return "dial_timeout"
	case "insecure", "skip_verify", "insecure_skip_tls_verify", "skip_tls_verify":
		return "insecure_skip_verify"
	case "ca", "ca_cert", "cacert":
		return "ca_file"
	case "cert", "client_cert":
		return "cert_file"
	case "key", "client_key":
		return "key_file"
	case "user", "login":
		return "username"
	case "pass":
		return "password"
	case "secret_file":
		return "password_file"
	case "env":
		return "password_env"
	case "retain", "retention":
		return "keep"
	case "daemon":
		return "daemon_json"
	case "config_path", "hosts_dir":
		return "certs_dir"
	case "registries_yaml":
		return "registries"
	case "users":
		return "auth_users"
	}
	return ""
}

// suggestKey returns the hint for an unknown key: the key that was probably
// meant, or the list of keys allowed here.
func suggestKey(key string, known []string) string {
	has := func(k string) bool { return indexOf(known, k) >= 0 }
	lower := strings.ToLower(key)
	switch {
	case lower == "token" && has("auth") && has("identity_token"):
		// The old k3s docs showed `token:`, which k3s never read (k3s-io/docs#589).
		return "did you mean auth (base64 of user:password) or identity_token?"
	}
	// Same letters, different spelling: identitytoken, passwordFile, ca-file.
	for _, k := range known {
		if squash(k) == squash(key) {
			return "the key is " + k
		}
	}
	if to := keyAlias(lower); to != "" && has(to) {
		return "did you mean " + to + "?"
	}
	best, bestD := "", 3
	for _, k := range known {
		if d := levenshtein(lower, k); d < bestD && d <= len(k)/2 {
			best, bestD = k, d
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	return "known keys: " + strings.Join(known, ", ")
}

func squash(s string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
