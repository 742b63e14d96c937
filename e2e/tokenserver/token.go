package main

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

// The token service of distribution's `auth: token` (distribution v3
// registry/auth/token): a JWT signed ES256 with the signer's certificate in
// the x5c header (verified against the registry's rootcertbundle), issuer
// and audience (the service) as configured, and `access` claims listing the
// actions granted per repository. Three realms differ only for requests
// without credentials:
//
//	/token       an anonymous token that grants nothing (the registry then
//	             answers insufficient_scope: what a registry does that
//	             "replaces" a header it ignored with an anonymous token)
//	/token-deny  401: anonymous access is off (Nexus without anonymous pull)
//	/token-pull  an anonymous token that grants pull
//
// The right user and password (GET with Basic auth, as Docker and
// containerd 2.x send it, or POST grant_type=password, as containerd sends
// configured credentials first) get every action asked for; wrong ones 401.
type tokenServer struct {
	key             *ecdsa.PrivateKey
	x5c             string
	issuer, service string
	user, password  string
}

func runToken(args []string) error {
	var addr, keyFile, certFile, pwFile string
	ts := &tokenServer{}
	err := flags("token", args, func(fs *flag.FlagSet) {
		fs.StringVar(&addr, "addr", "127.0.0.1:5003", "listen address")
		fs.StringVar(&keyFile, "key", "", "signing key (PKCS#8 PEM, P-256)")
		fs.StringVar(&certFile, "cert", "", "the key's certificate (the registry's rootcertbundle)")
		fs.StringVar(&ts.issuer, "issuer", "mirrorctl-e2e-tokens", "iss claim")
		fs.StringVar(&ts.service, "service", "mirrorctl-e2e-registry", "aud claim (the registry's service)")
		fs.StringVar(&ts.user, "user", "testuser", "the one user")
		fs.StringVar(&pwFile, "password-file", "", "the user's password (one trailing newline is trimmed)")
	})
	if err != nil {
		return err
	}
	if ts.key, err = readKey(keyFile); err != nil {
		return err
	}
	der, err := readCertDER(certFile)
	if err != nil {
		return err
	}
	ts.x5c = base64.StdEncoding.EncodeToString(der)
	pw, err := os.ReadFile(pwFile)
	if err != nil {
		return err
	}
	ts.password = strings.TrimSuffix(string(pw), "\n")
	mux := http.NewServeMux()
	for path, anon := range map[string]string{"/token": "none", "/token-deny": "deny", "/token-pull": "pull"} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) { ts.serve(w, r, anon) })
	}
	log.Printf("token service on %s (issuer %q, service %q)", addr, ts.issuer, ts.service)
	return http.ListenAndServe(addr, mux)
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request, anon string) {
	var user, pass string
	var hasCreds bool
	var scopes []string
	switch r.Method {
	case http.MethodGet:
		user, pass, hasCreds = r.BasicAuth()
		scopes = r.URL.Query()["scope"]
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			// containerd falls back to GET on 400 (and on 401, 404, 405).
			log.Printf("%s %s grant_type=%q: 400 unsupported", r.Method, r.URL.Path, gt)
			writeErr(w, http.StatusBadRequest, "UNSUPPORTED", "only grant_type=password")
			return
		}
		user, pass = r.PostForm.Get("username"), r.PostForm.Get("password")
		hasCreds = user != "" || pass != ""
		scopes = strings.Fields(r.PostForm.Get("scope"))
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	who := "anonymous"
	granted := func(actions []string) []string { return actions }
	switch {
	case hasCreds:
		ok := subtle.ConstantTimeCompare([]byte(user), []byte(ts.user)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(ts.password)) == 1
		if !ok {
			log.Printf("%s %s user=%q: 401 wrong credentials", r.Method, r.URL.Path, user)
			w.Header().Set("WWW-Authenticate", `Basic realm="mirrorctl-e2e-tokens"`)
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "wrong username or password")
			return
		}
		who = user
	case anon == "deny":
		log.Printf("%s %s anonymous: 401 (anonymous access is off)", r.Method, r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Basic realm="mirrorctl-e2e-tokens"`)
		writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	case anon == "pull":
		granted = func(actions []string) []string {
			for _, a := range actions {
				if a == "pull" {
					return []string{"pull"}
				}
			}
			return []string{}
		}
	default:
		granted = func([]string) []string { return []string{} }
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	list := []access{}
	var logged []string
	for _, sc := range scopes {
		for s := range strings.FieldsSeq(sc) {
			first, last := strings.Index(s, ":"), strings.LastIndex(s, ":")
			if first < 0 || first == last {
				continue
			}
			a := access{Type: s[:first], Name: s[first+1 : last], Actions: granted(strings.Split(s[last+1:], ","))}
			if len(a.Actions) > 0 {
				list = append(list, a)
			}
			logged = append(logged, fmt.Sprintf("%s:%s:%s", a.Type, a.Name, strings.Join(a.Actions, ",")))
		}
	}
	sub := ""
	if who != "anonymous" {
		sub = who
	}
	tok, err := ts.sign(sub, list)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	log.Printf("%s %s %s: 200 granted [%s]", r.Method, r.URL.Path, who, strings.Join(logged, " "))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300,
		"issued_at": time.Now().UTC().Format(time.RFC3339)})
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// sign makes the JWT distribution's token access controller verifies.
func (ts *tokenServer) sign(sub string, access any) (string, error) {
	now := time.Now()
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{ts.x5c}})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": ts.issuer, "sub": sub, "aud": ts.service,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-10 * time.Second).Unix(), "iat": now.Unix(),
		"jti": hex.EncodeToString(jti), "access": access,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig), nil
}
