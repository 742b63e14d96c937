package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/spec"
)

// nodeSpecDir is where the generated user-data puts the spec: mirrorctl's
// default, so that `mirrorctl sync` and the packaged units find it.
const nodeSpecDir = "/etc/mirrorctl"

const cloudInitLong = `cloud-init prints a #cloud-config for a node's first boot. It carries the spec
(--config) to /etc/mirrorctl/config.yaml and every file the spec names
(password_file, ca_file, cert_file, key_file) to the path the spec resolves it
to on the node, relative paths starting at /etc/mirrorctl. Each file's content
comes from --secret NAME=FILE when given (NAME as written in the spec, or the
absolute path on the node), else from the same relative path beside the local
spec. Conf.d drop-ins beside the local spec go along too. Everything is base64
(encoding: b64), so any byte survives; password and key files, and a spec that
holds a password inline, are mode 0600, the rest 0644.

When the sync runs. cloud-init's init stage (cloud-init.service) runs bootcmd,
then write_files, and is ordered before sysinit.target, so before every
ordinary service, the container engines included. runcmd runs in the final
stage, after multi-user.target: the engines have started by then and may
already have pulled images without the mirrors. But bootcmd runs before
write_files, so it cannot sync itself on the first boot. The generated bootcmd
therefore only queues a oneshot transient unit (systemd-run --no-block,
mirrorctl-cloud-init.service) ordered After=cloud-init.service, i.e. after
write_files, and Before= the engines' units: it installs --package if given,
then runs 'mirrorctl sync'. It runs once per instance (cloud-init-per); on
later boots the package's mirrorctl-sync.service, ordered the same way, does the
sync. If an engine is installed later by cloud-init itself (packages:, or a
runcmd such as the k3s installer), set that engine's 'enabled: true' in the
spec so its files are written before it first starts.

--package URL downloads (curl, else wget) and installs a .deb (dpkg -i, keeping
the spec already written) or .rpm in that unit; --package-sha256 checks it.
--package PATH embeds the package (gzip+base64) in write_files: several MB of
user-data, more than many clouds accept (EC2 takes 16 KiB); prefer a URL.

Secrets in user-data are readable by anyone who can read the instance's
user-data: the cloud metadata service answers every process on the instance
that can reach it, and the cloud account's users can read it. A warning says so
on stderr.`

type cloudInitFlags struct {
	secrets   []string
	pkg       string
	pkgSHA256 string
}

func newCloudInitCmd(g *globalFlags) *cobra.Command {
	var f cloudInitFlags
	cmd := &cobra.Command{
		Use:   "cloud-init",
		Short: "Print a #cloud-config that installs the spec and its secrets and syncs at first boot, before the engines start",
		Long:  cloudInitLong + "\n\n" + exitCodesHelp,
		Example: `  mirrorctl cloud-init --config spec.yaml > user-data
  mirrorctl cloud-init --config spec.yaml --secret secrets/nexus-password=/run/vault/nexus \
      --package https://downloads.example.internal/mirrorctl_1.0.0_amd64.deb`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCloudInit(g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.secrets, "secret", nil, "NAME=FILE: the content for a file the spec names (NAME as written in the spec, or its absolute path on the node); repeatable")
	fl.StringVar(&f.pkg, "package", "", "a mirrorctl .deb or .rpm to install at first boot: an http(s) URL, or a local file to embed")
	fl.StringVar(&f.pkgSHA256, "package-sha256", "", "the SHA-256 of --package URL, checked before it is installed")
	return cmd
}

func runCloudInit(g *globalFlags, f cloudInitFlags) error {
	secrets := map[string]string{}
	for _, s := range f.secrets {
		name, file, ok := strings.Cut(s, "=")
		if !ok || name == "" || file == "" {
			return &exitError{code: exitInput, err: fmt.Errorf("--secret %q: write NAME=FILE", s)}
		}
		node := nodePath(name)
		if _, dup := secrets[node]; dup {
			return &exitError{code: exitInput, err: fmt.Errorf("--secret %s is given twice", name)}
		}
		secrets[node] = file
	}
	ud, err := buildUserData(g.own, g.configPath(), secrets, f.pkg, f.pkgSHA256)
	if err != nil {
		return err
	}
	for _, w := range ud.warnings {
		fmt.Fprintln(g.stderr, "mirrorctl: warning: "+w)
	}
	_, err = g.stdout.Write(ud.data)
	return err
}

// nodePath is where a spec reference lands on the node: relative names
// start at /etc/mirrorctl, as they do for the spec installed there.
func nodePath(ref string) string {
	if path.IsAbs(ref) {
		return path.Clean(ref)
	}
	return path.Join(nodeSpecDir, ref)
}

// userData is the generated #cloud-config and what to tell the user.
type userData struct {
	data     []byte
	warnings []string
}

type writeFile struct {
	Path        string `yaml:"path"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
	Encoding    string `yaml:"encoding"`
	Content     string `yaml:"content"`
}

type cloudConfig struct {
	WriteFiles []writeFile `yaml:"write_files"`
	Bootcmd    [][]string  `yaml:"bootcmd"`
}

// buildUserData loads the spec as it will be on the node (at
// /etc/mirrorctl/config.yaml, so every reference resolves to its node path)
// while reading the content from the local files, and turns what was read
// into write_files.
func buildUserData(own *hostfs.Root, specPath string, secrets map[string]string, pkg, pkgSHA string) (*userData, error) {
	localDir := filepath.Dir(specPath)
	mainNode := path.Join(nodeSpecDir, "config.yaml")
	dropInDir := path.Join(nodeSpecDir, "conf.d")

	read := map[string][]byte{} // node path -> content, every file the loader read
	var envs []string
	// localOf maps a node path to where its content comes from.
	localOf := func(node string) (string, error) {
		switch {
		case node == mainNode:
			return specPath, nil
		case secrets[node] != "":
			return secrets[node], nil
		case strings.HasPrefix(node, nodeSpecDir+"/"):
			return filepath.Join(localDir, filepath.FromSlash(strings.TrimPrefix(node, nodeSpecDir+"/"))), nil
		}
		return "", fmt.Errorf("%s is outside %s on the node: give its content with --secret %s=FILE", node, nodeSpecDir, node)
	}
	opts := spec.Options{
		Engines: engines.Sections(),
		ReadFile: func(node string) ([]byte, error) {
			local, err := localOf(node)
			if err != nil {
				return nil, err
			}
			b, err := own.ReadLocal(local, spec.MaxFileSize)
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) && node != mainNode {
					return nil, fmt.Errorf("reading %s for %s on the node: %w (give it with --secret NAME=FILE)", local, node, pe.Err)
				}
				return nil, err
			}
			read[node] = b
			return b, nil
		},
		Glob: func(string) ([]string, error) {
			// The loader asks for /etc/mirrorctl/conf.d/*.yaml: answer with the
			// drop-ins beside the local spec, by their node names.
			local, err := filepath.Glob(filepath.Join(globQuote(localDir), "conf.d", "*.yaml"))
			var out []string
			for _, l := range local {
				out = append(out, path.Join(dropInDir, filepath.Base(l)))
			}
			return out, err
		},
		LookupEnv: func(key string) (string, bool) {
			envs = append(envs, key)
			return "set-on-the-node", true
		},
	}
	s, err := spec.Load(mainNode, opts)
	if err != nil {
		var se spec.Errors
		if errors.As(err, &se) {
			for _, e := range se {
				if l, lerr := localOf(e.Pos.File); lerr == nil {
					e.Pos.File = l
				}
			}
			return nil, &exitError{code: exitInput, err: se}
		}
		return nil, &exitError{code: exitInput, err: fmt.Errorf("loading spec: %w", err)}
	}
	for node := range secrets {
		if _, ok := read[node]; !ok {
			return nil, &exitError{code: exitInput, err: fmt.Errorf("--secret: the spec does not name %s (it names: %s)",
				node, strings.Join(referenced(read, s.Files), ", "))}
		}
	}

	ud := &userData{}
	secret := map[string]bool{} // node paths that get 0600
	for _, c := range s.Configs {
		if a := c.Auth; a != nil {
			if a.PasswordFile != "" {
				secret[a.PasswordFile] = true
			} else if a.PasswordEnv == "" {
				// an inline password, auth or identity_token: the spec file itself is secret
				secret[a.Pos.File] = true
			}
		}
		if c.TLS != nil && c.TLS.KeyFile != "" {
			secret[c.TLS.KeyFile] = true
		}
	}
	var cc cloudConfig
	var secretFiles []string
	for _, node := range append(slices.Clone(s.Files), referenced(read, s.Files)...) {
		mode := "0644"
		if secret[node] {
			mode = "0600"
			secretFiles = append(secretFiles, node)
		}
		cc.WriteFiles = append(cc.WriteFiles, writeFile{
			Path: node, Owner: "root:root", Permissions: mode,
			Encoding: "b64", Content: base64.StdEncoding.EncodeToString(read[node]),
		})
	}

	script := []string{"set -eu"}
	if pkg != "" {
		lines, wf, warn, err := packageInstall(own, pkg, pkgSHA)
		if err != nil {
			return nil, &exitError{code: exitInput, err: err}
		}
		script = append(script, lines...)
		if wf != nil {
			cc.WriteFiles = append(cc.WriteFiles, *wf)
		}
		ud.warnings = append(ud.warnings, warn...)
	} else if pkgSHA != "" {
		return nil, &exitError{code: exitInput, err: fmt.Errorf("--package-sha256 needs --package URL")}
	}
	script = append(script, "exec mirrorctl sync")
	cc.Bootcmd = [][]string{{
		"cloud-init-per", "instance", "mirrorctl-first-sync",
		"systemd-run", "--no-block", "--unit=mirrorctl-cloud-init",
		"--description=mirrorctl first-boot sync (from cloud-init user-data)",
		"--property=Type=oneshot", "--property=RemainAfterExit=yes", "--property=TimeoutStartSec=15min",
		"--property=After=cloud-init.service",
		"--property=Before=" + strings.Join(append([]string{"mirrorctl-sync.service", "mirrorctl.service"}, engines.BootUnits()...), " "),
		"/bin/sh", "-c", strings.Join(script, "\n"),
	}}

	if len(secretFiles) > 0 {
		ud.warnings = append(ud.warnings, fmt.Sprintf("the user-data holds secrets (%s): whoever can read this instance's user-data can read them — the cloud metadata service answers any process on the instance that can reach it, and the cloud account's users can read it; keep the user-data out of version control and logs, and consider delivering secrets as a drop-in by other means",
			strings.Join(secretFiles, ", ")))
	}
	for _, e := range envs {
		ud.warnings = append(ud.warnings, fmt.Sprintf("the spec reads password_env %s: the first-boot sync and mirrorctl-sync.service need it in their environment (a drop-in with Environment= or EnvironmentFile=); it is not in the user-data", e))
	}

	var b bytes.Buffer
	b.WriteString("#cloud-config\n")
	b.WriteString("# Generated by `mirrorctl cloud-init` from " + filepath.Base(specPath) + ".\n")
	b.WriteString("# write_files: the spec and the files it names. bootcmd (first boot of the instance\n")
	b.WriteString("# only) queues mirrorctl-cloud-init.service, which runs after write_files and before\n")
	b.WriteString("# the container engines start: it installs the package if one is given, then runs\n")
	b.WriteString("# `mirrorctl sync`. See `mirrorctl cloud-init --help`.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&cc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	ud.data = b.Bytes()
	return ud, nil
}

// referenced lists the files the loader read other than the spec files,
// sorted.
func referenced(read map[string][]byte, specFiles []string) []string {
	var out []string
	for node := range read {
		if !slices.Contains(specFiles, node) {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}

// pkgCacheDir is where the package is downloaded or written on the node.
const pkgCacheDir = "/var/cache/mirrorctl"

// packageInstall returns the shell lines that install pkg on the node, the
// write_files entry that carries it when it is a local file, and warnings.
func packageInstall(own *hostfs.Root, pkg, sha string) (lines []string, wf *writeFile, warnings []string, err error) {
	isURL := strings.HasPrefix(pkg, "https://") || strings.HasPrefix(pkg, "http://")
	name := filepath.Base(pkg)
	if isURL {
		u, perr := url.Parse(pkg)
		if perr != nil || u.Host == "" {
			return nil, nil, nil, fmt.Errorf("--package %s: not a valid URL", pkg)
		}
		if strings.ContainsAny(pkg, "'\"\\` \t\r\n$") {
			return nil, nil, nil, fmt.Errorf("--package %s: the URL must not contain quotes, backslashes, '$' or white space (percent-encode them)", pkg)
		}
		name = path.Base(u.Path)
	}
	var install string
	switch {
	case strings.HasSuffix(name, ".deb"):
		// --force-confold: keep /etc/mirrorctl/config.yaml as write_files left it
		// (dpkg would otherwise ask, and fail without a terminal).
		install = `dpkg -i --force-confdef --force-confold "$pkg"`
	case strings.HasSuffix(name, ".rpm"):
		// %config(noreplace): an existing config.yaml is kept, the packaged one
		// lands beside it as config.yaml.rpmnew.
		install = `rpm -U --replacepkgs "$pkg"`
	default:
		return nil, nil, nil, fmt.Errorf("--package %s: the name must end in .deb or .rpm", pkg)
	}
	if sha != "" {
		if b, herr := hex.DecodeString(sha); herr != nil || len(b) != 32 {
			return nil, nil, nil, fmt.Errorf("--package-sha256 %q: want 64 hex digits", sha)
		}
		if !isURL {
			return nil, nil, nil, fmt.Errorf("--package-sha256 is for --package URL; a local file is embedded as it is")
		}
	}
	dst := path.Join(pkgCacheDir, name)
	lines = append(lines, "pkg="+dst)
	if isURL {
		if strings.HasPrefix(pkg, "http://") && sha == "" {
			warnings = append(warnings, "--package is plain http and has no --package-sha256: anyone on the path can replace the package that will run as root")
		}
		lines = append(lines,
			"mkdir -p "+pkgCacheDir,
			"if command -v curl >/dev/null 2>&1; then",
			"  curl -fsSL --retry 5 --retry-connrefused --max-time 300 -o \"$pkg.part\" '"+pkg+"'",
			"else",
			"  wget -q -T 60 -t 5 -O \"$pkg.part\" '"+pkg+"'",
			"fi",
		)
		if sha != "" {
			lines = append(lines, "echo '"+strings.ToLower(sha)+"  '\"$pkg.part\" | sha256sum -c -")
		}
		lines = append(lines, `mv "$pkg.part" "$pkg"`)
	} else {
		data, rerr := own.ReadLocal(pkg, maxPackage)
		if rerr != nil {
			return nil, nil, nil, fmt.Errorf("--package: %w", rerr)
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(data)
		zw.Close()
		content := base64.StdEncoding.EncodeToString(gz.Bytes())
		wf = &writeFile{Path: dst, Owner: "root:root", Permissions: "0644", Encoding: "gz+b64", Content: content}
		warnings = append(warnings, fmt.Sprintf("--package %s adds %d KiB to the user-data (gzip+base64 of %d KiB); many clouds accept far less (EC2: 16 KiB): prefer --package URL there",
			pkg, (len(content)+1023)/1024, (len(data)+1023)/1024))
	}
	lines = append(lines, install)
	return lines, wf, warnings, nil
}

// globQuote escapes the pattern characters of a literal path.
func globQuote(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// maxPackage bounds a package embedded in user-data (far more than any
// cloud accepts; the command says how much it is).
const maxPackage = 256 << 20
