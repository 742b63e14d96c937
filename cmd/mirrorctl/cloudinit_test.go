package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mirrorctl/mirrorctl/engines"
	"gopkg.in/yaml.v3"
)

var updateExamples = flag.Bool("update-examples", false, "rewrite packaging/cloud-init/*.yaml from the generator")

// cloudInit runs `mirrorctl cloud-init` in process.
func cloudInit(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globalFlags{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	code = runWith(context.Background(), g, append([]string{"cloud-init"}, args...))
	return code, out.String(), errb.String()
}

// parsedUserData is the #cloud-config as cloud-init reads it, decoded
// strictly: a key the generator should not write fails the test (cloud-init
// schema accepts unknown top-level keys: docs/delivery.md#cloud-init-schema-checks).
type parsedUserData struct {
	WriteFiles []writeFile `yaml:"write_files"`
	Bootcmd    [][]string  `yaml:"bootcmd"`
}

func parseUserData(t *testing.T, out string) parsedUserData {
	t.Helper()
	if !strings.HasPrefix(out, "#cloud-config\n") {
		t.Fatalf("user-data does not start with the #cloud-config header:\n%.200s", out)
	}
	var ud parsedUserData
	dec := yaml.NewDecoder(strings.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(&ud); err != nil {
		t.Fatalf("user-data is not the YAML expected: %v\n%s", err, out)
	}
	return ud
}

// decode returns a write_files entry's content as cloud-init decodes it.
func (w writeFile) decode(t *testing.T) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(w.Content)
	if err != nil {
		t.Fatalf("%s: content is not base64: %v", w.Path, err)
	}
	switch w.Encoding {
	case "b64":
		return b
	case "gz+b64":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", w.Path, err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", w.Path, err)
		}
		return out
	}
	t.Fatalf("%s: unexpected encoding %q", w.Path, w.Encoding)
	return nil
}

// writeTo applies write_files under root, as cloud-init would on the node.
func (ud parsedUserData) writeTo(t *testing.T, root string) {
	t.Helper()
	for _, w := range ud.WriteFiles {
		p := filepath.Join(root, w.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var mode os.FileMode
		switch w.Permissions {
		case "0600":
			mode = 0o600
		case "0644":
			mode = 0o644
		default:
			t.Fatalf("%s: unexpected permissions %q", w.Path, w.Permissions)
		}
		if err := os.WriteFile(p, w.decode(t), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func (ud parsedUserData) file(t *testing.T, path string) writeFile {
	t.Helper()
	for _, w := range ud.WriteFiles {
		if w.Path == path {
			return w
		}
	}
	var have []string
	for _, w := range ud.WriteFiles {
		have = append(have, w.Path)
	}
	t.Fatalf("no write_files entry for %s (have %v)", path, have)
	return writeFile{}
}

// script is the shell script the first-boot unit runs.
func (ud parsedUserData) script(t *testing.T) string {
	t.Helper()
	if len(ud.Bootcmd) != 1 {
		t.Fatalf("want one bootcmd entry, got %d", len(ud.Bootcmd))
	}
	c := ud.Bootcmd[0]
	if !slices.Equal(c[:4], []string{"cloud-init-per", "instance", "mirrorctl-first-sync", "systemd-run"}) {
		t.Fatalf("bootcmd does not queue the first-boot unit once per instance: %q", c)
	}
	for _, want := range []string{"--no-block", "--property=Type=oneshot", "--property=After=cloud-init.service"} {
		if !slices.Contains(c, want) {
			t.Errorf("bootcmd lacks %s: %q", want, c)
		}
	}
	before := ""
	for _, a := range c {
		if v, ok := strings.CutPrefix(a, "--property=Before="); ok {
			before = v
		}
	}
	for _, u := range engines.BootUnits() {
		if !slices.Contains(strings.Fields(before), u) {
			t.Errorf("the first-boot unit is not ordered before %s: Before=%s", u, before)
		}
	}
	if !slices.Equal(c[len(c)-3:len(c)-1], []string{"/bin/sh", "-c"}) {
		t.Fatalf("bootcmd does not end in /bin/sh -c SCRIPT: %q", c)
	}
	return c[len(c)-1]
}

func TestCloudInitDemoSpec(t *testing.T) {
	code, out, errOut := cloudInit(t, "--config", "../../testdata/demo/spec.yaml")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ud := parseUserData(t, out)
	want := []struct {
		path, mode, local string
	}{
		{"/etc/mirrorctl/config.yaml", "0644", "../../testdata/demo/spec.yaml"},
		{"/etc/mirrorctl/certs/nexus-ca.crt", "0644", "../../testdata/demo/certs/nexus-ca.crt"},
		{"/etc/mirrorctl/secrets/nexus-password", "0600", "../../testdata/demo/secrets/nexus-password"},
	}
	if len(ud.WriteFiles) != len(want) {
		t.Errorf("want %d write_files entries, got %d", len(want), len(ud.WriteFiles))
	}
	for _, w := range want {
		f := ud.file(t, w.path)
		if f.Permissions != w.mode || f.Owner != "root:root" || f.Encoding != "b64" {
			t.Errorf("%s: permissions %s owner %s encoding %s; want %s root:root b64", w.path, f.Permissions, f.Owner, f.Encoding, w.mode)
		}
		local, err := os.ReadFile(w.local)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.decode(t), local) {
			t.Errorf("%s: the content does not round-trip", w.path)
		}
	}
	if s := ud.script(t); s != "set -eu\nexec mirrorctl sync" {
		t.Errorf("first-boot script without a package:\n%s", s)
	}
	if !strings.Contains(errOut, "user-data holds secrets (/etc/mirrorctl/secrets/nexus-password)") ||
		!strings.Contains(errOut, "metadata service") {
		t.Errorf("no warning about secrets in user-data on stderr:\n%s", errOut)
	}
	if strings.Contains(out, "demo-only-not-a-real-password") {
		t.Error("the password appears in clear in the user-data (want base64 only)")
	}
	schemaCheck(t, out)
}

// TestCloudInitScratchRoot applies the generated write_files to a scratch
// copy of the demo host and runs the sync the first-boot unit runs: the
// engines end up configured, with the secret read from where the spec on the
// node says.
func TestCloudInitScratchRoot(t *testing.T) {
	h := newHost(t)
	h.healthy = func(string) error { return nil }
	odd := "p@ss:wörd \"#$\x01\n" // odd bytes must survive base64
	secret := h.write("elsewhere/pw", odd)
	specPath := h.write("spec.yaml", `mirrors:
  docker.io:
    endpoint: ["https://nexus.example.internal:8443"]
configs:
  nexus.example.internal:8443:
    auth:
      username: node-puller
      password_file: secrets/nexus-password
    tls:
      ca_file: /etc/mirrorctl/tls/ca.crt
`)
	ca, err := os.ReadFile("../../testdata/demo/certs/nexus-ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	caLocal := h.write("ca-from-vault.crt", string(ca))
	code, out, errOut := cloudInit(t, "--config", specPath,
		"--secret", "secrets/nexus-password="+secret, "--secret", "/etc/mirrorctl/tls/ca.crt="+caLocal)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ud := parseUserData(t, out)
	if got := string(ud.file(t, "/etc/mirrorctl/secrets/nexus-password").decode(t)); got != odd {
		t.Errorf("the secret does not round-trip: %q", got)
	}
	ud.writeTo(t, h.root)
	if st, err := os.Stat(filepath.Join(h.root, "etc/mirrorctl/secrets/nexus-password")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode: %v %v", st.Mode(), err)
	}
	// The first-boot unit runs `mirrorctl sync` with the default spec path; under
	// a scratch root that is --config <root>/etc/mirrorctl/config.yaml. The spec
	// names an absolute /etc/mirrorctl/tls/ca.crt, which on this test machine is
	// not under the root: give the node's copy through a drop-in-free rewrite.
	nodeSpec := filepath.Join(h.root, "etc/mirrorctl/config.yaml")
	b, _ := os.ReadFile(nodeSpec)
	os.WriteFile(nodeSpec, bytes.ReplaceAll(b, []byte("/etc/mirrorctl/tls/ca.crt"), []byte(filepath.Join(h.root, "etc/mirrorctl/tls/ca.crt"))), 0o644)
	if code, out, errOut := h.run("", "--config", nodeSpec, "sync", "--adopt"); code != exitOK {
		t.Fatalf("sync after write_files: exit %d\n%s%s", code, out, errOut)
	}
	hosts := h.read("etc/containerd/certs.d/docker.io/hosts.toml")
	if !strings.Contains(hosts, "https://nexus.example.internal:8443") {
		t.Errorf("containerd not configured for the mirror:\n%s", hosts)
	}
	if !strings.Contains(h.read("etc/docker/daemon.json"), "https://nexus.example.internal:8443") {
		t.Error("docker's daemon.json lacks the mirror")
	}
	// the password file's one trailing newline is trimmed; every other byte counts
	auth := base64.StdEncoding.EncodeToString([]byte("node-puller:" + strings.TrimSuffix(odd, "\n")))
	if !strings.Contains(h.read("etc/containerd/config.toml"), auth) {
		t.Error("containerd's config.toml lacks the credentials read from the secret file")
	}
}

func TestCloudInitInlinePasswordMakesTheSpecSecret(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "spec.yaml")
	os.WriteFile(p, []byte("configs:\n  r.example.internal:\n    auth: {username: u, password: inline}\n"), 0o600)
	code, out, errOut := cloudInit(t, "--config", p)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if f := parseUserData(t, out).file(t, "/etc/mirrorctl/config.yaml"); f.Permissions != "0600" {
		t.Errorf("a spec with an inline password is %s, want 0600", f.Permissions)
	}
	if !strings.Contains(errOut, "/etc/mirrorctl/config.yaml") {
		t.Errorf("the warning does not name the spec as a secret: %s", errOut)
	}
}

func TestCloudInitDropInsGoAlong(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "conf.d", "secrets"), 0o755)
	os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte("mirrors:\n  docker.io:\n    endpoint: [\"https://m.example.internal\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "conf.d", "10-auth.yaml"), []byte("configs:\n  m.example.internal:\n    auth: {username: u, password_file: secrets/pw}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "conf.d", "secrets", "pw"), []byte("x\n"), 0o600)
	code, out, errOut := cloudInit(t, "--config", filepath.Join(dir, "spec.yaml"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ud := parseUserData(t, out)
	if f := ud.file(t, "/etc/mirrorctl/conf.d/10-auth.yaml"); f.Permissions != "0644" {
		t.Errorf("drop-in permissions %s", f.Permissions)
	}
	// relative to the drop-in that names it, as the loader resolves it on the node
	if f := ud.file(t, "/etc/mirrorctl/conf.d/secrets/pw"); f.Permissions != "0600" {
		t.Errorf("secret permissions %s", f.Permissions)
	}
}

func TestCloudInitBadInput(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte("configs:\n  r.example.internal:\n    auth: {username: u, password_file: /srv/pw}\n"), 0o644)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("x\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("mirrors:\n  docker.io:\n    endpoints: [\"https://m.example.internal\"]\n"), 0o644)
	pkg := filepath.Join(dir, "mirrorctl.tar")
	os.WriteFile(pkg, []byte("x"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"absolute_reference_needs_a_secret", []string{"--config", spec}, "--secret"},
		{"secret_the_spec_does_not_name", []string{"--config", spec, "--secret", "/srv/pw=" + pw, "--secret", "other=" + pw}, "does not name /etc/mirrorctl/other"},
		{"secret_without_file", []string{"--config", spec, "--secret", "/srv/pw"}, "NAME=FILE"},
		{"spec_error_names_the_local_file", []string{"--config", bad}, bad + ":3:5"},
		{"package_of_unknown_kind", []string{"--config", spec, "--secret", "/srv/pw=" + pw, "--package", pkg}, ".deb or .rpm"},
		{"url_with_quote", []string{"--config", spec, "--secret", "/srv/pw=" + pw, "--package", "https://x.example/a'b.deb"}, "quotes"},
		{"sha_without_url", []string{"--config", spec, "--secret", "/srv/pw=" + pw, "--package-sha256", strings.Repeat("a", 64)}, "needs --package URL"},
		{"bad_sha", []string{"--config", spec, "--secret", "/srv/pw=" + pw, "--package", "https://x.example/m.deb", "--package-sha256", "abc"}, "64 hex"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := cloudInit(t, c.args...)
			if code != exitInput {
				t.Errorf("exit %d, want %d", code, exitInput)
			}
			if out != "" {
				t.Errorf("printed user-data on error:\n%s", out)
			}
			if !strings.Contains(errOut, c.want) {
				t.Errorf("stderr lacks %q:\n%s", c.want, errOut)
			}
		})
	}
}

func TestCloudInitPackage(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.yaml")
	os.WriteFile(spec, []byte("mirrors: {}\n"), 0o644)
	deb := filepath.Join(dir, "mirrorctl_1.0.0_amd64.deb")
	payload := bytes.Repeat([]byte("!<arch>\nnot really a deb\x00\xff"), 1000)
	os.WriteFile(deb, payload, 0o644)

	t.Run("path_is_embedded", func(t *testing.T) {
		code, out, errOut := cloudInit(t, "--config", spec, "--package", deb)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		ud := parseUserData(t, out)
		f := ud.file(t, "/var/cache/mirrorctl/mirrorctl_1.0.0_amd64.deb")
		if f.Encoding != "gz+b64" || !bytes.Equal(f.decode(t), payload) {
			t.Errorf("the package does not round-trip (encoding %s)", f.Encoding)
		}
		s := ud.script(t)
		if !strings.Contains(s, `dpkg -i --force-confdef --force-confold "$pkg"`) || !strings.HasSuffix(s, "\nexec mirrorctl sync") {
			t.Errorf("script:\n%s", s)
		}
		if !strings.Contains(errOut, "KiB to the user-data") {
			t.Errorf("no size note: %s", errOut)
		}
		schemaCheck(t, out)
	})
	t.Run("url_is_downloaded_and_checked", func(t *testing.T) {
		sum := strings.Repeat("ab", 32)
		code, out, errOut := cloudInit(t, "--config", spec, "--package", "https://dl.example.internal/p/mirrorctl-1.0.0-1.x86_64.rpm", "--package-sha256", sum)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		ud := parseUserData(t, out)
		s := ud.script(t)
		for _, want := range []string{"pkg=/var/cache/mirrorctl/mirrorctl-1.0.0-1.x86_64.rpm", "curl -fsSL", "'https://dl.example.internal/p/mirrorctl-1.0.0-1.x86_64.rpm'",
			"echo '" + sum + "  '\"$pkg.part\" | sha256sum -c -", `rpm -U --replacepkgs "$pkg"`} {
			if !strings.Contains(s, want) {
				t.Errorf("script lacks %q:\n%s", want, s)
			}
		}
		if len(ud.WriteFiles) != 1 {
			t.Errorf("a URL package must not be embedded: %d write_files", len(ud.WriteFiles))
		}
		if strings.Contains(errOut, "secrets") {
			t.Errorf("warned about secrets for a spec without any: %s", errOut)
		}
		schemaCheck(t, out)
		if sh, err := exec.LookPath("sh"); err == nil {
			if out, err := exec.Command(sh, "-n", "-c", s).CombinedOutput(); err != nil {
				t.Errorf("the script is not valid sh: %v\n%s", err, out)
			}
		}
	})
	t.Run("plain_http_without_sum_warns", func(t *testing.T) {
		_, _, errOut := cloudInit(t, "--config", spec, "--package", "http://dl.example.internal/mirrorctl.deb")
		if !strings.Contains(errOut, "plain http") {
			t.Errorf("no warning: %s", errOut)
		}
	})
}

// TestCloudInitExamples keeps packaging/cloud-init/ equal to what the
// generator prints for the README's Nexus3 set-up (testdata/demo/spec.yaml).
// go test ./cmd/mirrorctl -run TestCloudInitExamples -update-examples rewrites them.
func TestCloudInitExamples(t *testing.T) {
	const demo = "../../testdata/demo/"
	for _, ex := range []struct {
		file string
		args []string
	}{
		{"nexus3-user-data.yaml", []string{"--config", demo + "spec.yaml"}},
		{"nexus3-user-data-with-package.yaml", []string{"--config", demo + "spec.yaml",
			"--package", "https://downloads.example.internal/mirrorctl/mirrorctl_1.0.0_amd64.deb",
			"--package-sha256", "0000000000000000000000000000000000000000000000000000000000000000"}},
	} {
		code, out, errOut := cloudInit(t, ex.args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", ex.file, code, errOut)
		}
		p := filepath.Join("../../packaging/cloud-init", ex.file)
		if *updateExamples {
			if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(have) != out {
			t.Errorf("%s is not what the generator prints now: go test ./cmd/mirrorctl -run TestCloudInitExamples -update-examples", p)
		}
		schemaCheck(t, out)
	}
}

// schemaCheck runs `cloud-init schema --config-file` when cloud-init is
// installed (make e2e installs it; make test skips the check without it).
func schemaCheck(t *testing.T, userData string) {
	t.Helper()
	ci, err := exec.LookPath("cloud-init")
	if err != nil {
		t.Log("cloud-init is not installed: schema check skipped")
		return
	}
	f := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(f, []byte(userData), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ci, "schema", "--config-file", f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
		t.Errorf("cloud-init schema rejects the user-data: %v\n%s", err, out)
	}
}
