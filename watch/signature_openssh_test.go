package watch

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestVerifyAgreesWithSSHKeygen: for each allowed_signers restriction,
// mirrorctl's verdict is `ssh-keygen -Y verify`'s, both ways, with the same
// identity (-I) and the same time (-Overify-time and the Verifier's clock).
// want pins what OpenSSH says, so a case that stops testing what its name
// says fails too.
func TestVerifyAgreesWithSSHKeygen(t *testing.T) {
	kg := newKeygen(t)
	fleet, fleetPub := kg.key("fleet", "")
	_, otherPub := kg.key("other", "")
	ca, caPub := kg.key("ca", "")
	rsa, rsaPub := kg.key("rsa", "rsa")
	carol, _ := kg.key("carol", "")
	dave, _ := kg.key("dave", "")
	erin, _ := kg.key("erin", "")
	frank, _ := kg.key("frank", "")
	gina, _ := kg.key("gina", "")
	hank, _ := kg.key("hank", "")
	const id = "fleet@example.com"
	const window = "20300101Z:20310101Z" // covers now, below
	certs := map[string]string{
		"fleet":    kg.cert(ca, fleet, id, window),
		"others":   kg.cert(ca, carol, "alice@example.com,bob@example.com", window),
		"expired":  kg.cert(ca, dave, id, "20200101Z:20300101Z"),
		"future":   kg.cert(ca, erin, id, "20310101Z:20320101Z"),
		"host":     kg.cert(ca, frank, id, window, "-h"),
		"wildcard": kg.cert(ca, gina, "*", window),
		"none":     kg.cert(ca, hank, "", window),
	}
	data := []byte("serial: 7\nmirrors:\n  docker.io:\n    endpoint: [https://m.example.com]\n")
	sigs := map[string][]byte{
		"fleet": kg.sign(fleet, DefaultNamespace, data),
		"rsa":   kg.sign(rsa, DefaultNamespace, data),
		"ca":    kg.sign(ca, DefaultNamespace, data),
		// ssh-keygen signs RSA with SHA-2 only; the SHA-1 one is made here.
		"rsa-sha1":     rsaSHA1Signature(t, rsa, DefaultNamespace, data),
		"fleet-sha256": kg.signWith(fleet, DefaultNamespace, data, "hashalg=sha256"),
	}
	for name, c := range certs {
		sigs["cert:"+name] = kg.sign(c, DefaultNamespace, data)
	}
	// now is 2030-06-15 12:00:00 UTC for both: 14:00 in Berlin (CEST).
	const at = "20300615120000Z"
	now := time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)
	keys := strings.NewReplacer("{fleet}", fleetPub, "{other}", otherPub, "{ca}", caPub, "{rsa}", rsaPub)

	for _, tc := range []struct {
		name    string
		allowed string
		signer  string // a key of sigs
		tz      string // for times without Z; "" is UTC
		want    bool   // OpenSSH's verdict
	}{
		// Principals: OpenSSH's match_pattern_list against -I.
		{"principal_match", id + " {fleet}", "fleet", "", true},
		{"principal_mismatch", "alice@example.com {fleet}", "fleet", "", false},
		{"principal_key_of_another_principal", "alice@example.com {fleet}\n" + id + " {other}", "fleet", "", false},
		{"principal_list", "alice@example.com," + id + " {fleet}", "fleet", "", true},
		{"principal_wildcard", "*@example.com {fleet}", "fleet", "", true},
		{"principal_wildcard_other_domain", "*@example.org {fleet}", "fleet", "", false},
		{"principal_question_mark", "flee?@example.com {fleet}", "fleet", "", true},
		{"principal_negated", "*@example.com,!" + id + " {fleet}", "fleet", "", false},
		{"principal_negated_first", "!" + id + ",* {fleet}", "fleet", "", false},
		{"principal_negated_other", "*@example.com,!mallory@example.com {fleet}", "fleet", "", true},
		{"principal_only_negations", "!mallory@example.com {fleet}", "fleet", "", false},
		{"principal_is_case_sensitive", "FLEET@example.com {fleet}", "fleet", "", false},
		{"principal_quoted", `"` + id + `" {fleet}`, "fleet", "", true},
		{"other_key", id + " {other}", "fleet", "", false},
		{"rsa_key", id + " {rsa}", "rsa", "", true},
		{"rsa_sha1_signature", id + " {rsa}", "rsa-sha1", "", false},
		{"sha256_hash", id + " {fleet}", "fleet-sha256", "", true},

		// namespaces=: a pattern list for the signature's namespace.
		{"namespaces_allowed", id + ` namespaces="mirrorctl" {fleet}`, "fleet", "", true},
		{"namespaces_pattern", id + ` namespaces="git,mirror*" {fleet}`, "fleet", "", true},
		{"namespaces_refused", id + ` namespaces="git,file" {fleet}`, "fleet", "", false},
		{"namespaces_negated", id + ` namespaces="*,!mirrorctl" {fleet}`, "fleet", "", false},
		{"namespaces_empty", id + ` namespaces="" {fleet}`, "fleet", "", false},
		{"option_name_any_case", id + ` NameSpaces="mirrorctl" {fleet}`, "fleet", "", true},
		{"options_stray_commas", id + ` ,,namespaces="mirrorctl" {fleet}`, "fleet", "", true},
		{"options_trailing_comma", id + ` namespaces="mirrorctl", {fleet}`, "fleet", "", false},
		{"option_unknown", id + ` namespaces="mirrorctl",verify-required {fleet}`, "fleet", "", false},

		// valid-after and valid-before: the key's own validity.
		{"valid_after_future", id + ` valid-after="20300616Z" {fleet}`, "fleet", "", false},
		{"valid_after_past", id + ` valid-after="20300615Z" {fleet}`, "fleet", "", true},
		{"valid_after_now", id + ` valid-after="20300615120000Z" {fleet}`, "fleet", "", true},
		{"valid_after_a_second_later", id + ` valid-after="20300615120001Z" {fleet}`, "fleet", "", false},
		{"valid_before_past", id + ` valid-before="20300615115959Z" {fleet}`, "fleet", "", false},
		{"valid_before_now", id + ` valid-before="20300615120000Z" {fleet}`, "fleet", "", true},
		{"valid_before_future", id + ` valid-before="20300616Z" {fleet}`, "fleet", "", true},
		{"window_covering_now", id + ` valid-after="20300101Z",valid-before="20301231Z" {fleet}`, "fleet", "", true},
		{"window_in_the_past", id + ` valid-after="20290101",valid-before="20300101" {fleet}`, "fleet", "", false},
		{"utc_suffix", id + ` valid-after="203006151201UTC" {fleet}`, "fleet", "", false},
		{"local_minutes_utc", id + ` valid-after="203006151200" {fleet}`, "fleet", "UTC", true},
		{"local_minutes_utc_later", id + ` valid-after="203006151201" {fleet}`, "fleet", "UTC", false},
		{"local_date_overflow", id + ` valid-before="20300631" {fleet}`, "fleet", "UTC", true}, // July 1st, as mktime reads it
		// Local time is read as mktime(3) with tm_isdst=0 reads it: as
		// standard time, even in summer (13:30 CET is 12:30 UTC).
		{"local_summer_after", id + ` valid-after="20300615133000" {fleet}`, "fleet", "Europe/Berlin", false},
		{"local_summer_before", id + ` valid-before="20300615133000" {fleet}`, "fleet", "Europe/Berlin", true},
		{"local_summer_before_past", id + ` valid-before="20300615125959" {fleet}`, "fleet", "Europe/Berlin", false},

		// cert-authority: the line is a CA; the signature's key must be a
		// user certificate it signed, for -I, valid now.
		{"cert_authority", id + " cert-authority {ca}", "cert:fleet", "", true},
		{"cert_authority_wildcard_line", "*@example.com cert-authority {ca}", "cert:fleet", "", true},
		{"cert_authority_with_namespaces", id + ` cert-authority,namespaces="mirrorctl" {ca}`, "cert:fleet", "", true},
		{"cert_authority_namespace_refused", id + ` namespaces="git",cert-authority {ca}`, "cert:fleet", "", false},
		{"cert_authority_line_expired", id + ` cert-authority,valid-before="20300601Z" {ca}`, "cert:fleet", "", false},
		{"cert_principals_exclude_identity", "*@example.com cert-authority {ca}", "cert:others", "", false},
		{"cert_wildcard_principal", "* cert-authority {ca}", "cert:wildcard", "", false},
		{"cert_without_principals", "* cert-authority {ca}", "cert:none", "", false},
		{"cert_expired", id + " cert-authority {ca}", "cert:expired", "", false},
		{"cert_not_yet_valid", id + " cert-authority {ca}", "cert:future", "", false},
		{"cert_host", id + " cert-authority {ca}", "cert:host", "", false},
		{"cert_other_ca", id + " cert-authority {other}", "cert:fleet", "", false},
		{"cert_line_for_other_principal", "alice@example.com cert-authority {ca}", "cert:fleet", "", false},
		{"plain_key_on_ca_line", id + " cert-authority {fleet}", "fleet", "", false},
		{"ca_key_itself_on_ca_line", id + " cert-authority {ca}", "ca", "", false},
		{"cert_on_plain_line_of_its_key", id + " {fleet}", "cert:fleet", "", false},
		{"cert_on_plain_line_of_its_ca", id + " {ca}", "cert:fleet", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, ok := sigs[tc.signer]
			if !ok {
				t.Fatalf("no signature %q", tc.signer)
			}
			allowed := keys.Replace(tc.allowed) + "\n"
			tz := tc.tz
			if tz == "" {
				tz = "UTC"
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				t.Skipf("time zone %s: %v", tz, err)
			}
			theirs, said := kg.verify(allowed, id, DefaultNamespace, at, tz, data, sig)
			if theirs != tc.want {
				t.Fatalf("ssh-keygen -Y verify says %v, the case expects %v: %s", theirs, tc.want, said)
			}
			err = ourVerdict(t, []byte(allowed), id, now, loc, data, sig)
			if ours := err == nil; ours != theirs {
				t.Errorf("mirrorctl says %v (%v); ssh-keygen says %v (%s)", ours, err, theirs, said)
			}
		})
	}
}

// ourVerdict is mirrorctl's answer to what ssh-keygen was asked: a file
// that does not load refuses everything, as OpenSSH skips a bad line.
func ourVerdict(t *testing.T, allowed []byte, identity string, now time.Time, loc *time.Location, data, sig []byte) error {
	t.Helper()
	v, err := ParseVerifier(allowed, VerifierOptions{Identity: identity, Now: func() time.Time { return now }, Location: loc})
	if err != nil {
		return err
	}
	return v.Verify(data, sig)
}

// rsaSHA1Signature is an SSHSIG over data by the RSA key at path, its
// signature made with ssh-rsa (SHA-1), which sshsig.c refuses.
func rsaSHA1Signature(t *testing.T, path, ns string, data []byte) []byte {
	t.Helper()
	pemKey, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	h := sha512.Sum512(data)
	msg := append([]byte(sigMagic), ssh.Marshal(signedData{ns, "", "sha512", h[:]})...)
	sig, err := s.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, msg, ssh.KeyAlgoRSA)
	if err != nil {
		t.Fatal(err)
	}
	blob := append([]byte(sigMagic), ssh.Marshal(sshsig{1, s.PublicKey().Marshal(), ns, "", "sha512", ssh.Marshal(sig)})...)
	return pem.EncodeToMemory(&pem.Block{Type: "SSH SIGNATURE", Bytes: blob})
}
