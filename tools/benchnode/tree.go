package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mirrorctl/mirrorctl/tools/benchnode/manifest"
)

// engineSet is where each engine binary of a scratch root comes from ("" when
// absent) and what it is, for the report.
type engineSet struct {
	containerd, dockerd, crictl string
}

// A node is one scratch root with its spec: the tree before mirrorctl ever
// ran (pristine), the root that is synced once and then measured (live), a
// root reset from pristine before every changed sync (fresh) and one reset
// before every run of the durable writer (floor).
type node struct {
	name      string
	registry  int
	spec      string // the spec file (outside the roots, as --config)
	pristine  string
	live      string
	fresh     string
	floor     string
	manifest  string            // what a changed sync writes, for the writer
	binaries  map[string]string // host path in the root -> the file it links to
	changedN  int               // files and directories a changed sync wrote
	changedKB int64
}

// buildNode lays out a node with n registries under dir.
func buildNode(name, dir string, n int, es engineSet, configToml []byte, ca []byte) (*node, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	nd := &node{name: name, registry: n,
		spec:     filepath.Join(dir, "spec", "config.yaml"),
		pristine: filepath.Join(dir, "pristine"), live: filepath.Join(dir, "live"),
		fresh: filepath.Join(dir, "fresh"), floor: filepath.Join(dir, "floor"),
		manifest: filepath.Join(dir, "changed.manifest"),
		binaries: map[string]string{}}
	if err := writeSpec(filepath.Dir(nd.spec), n, ca); err != nil {
		return nil, err
	}
	if err := writePristine(nd.pristine, configToml); err != nil {
		return nil, err
	}
	for hostPath, src := range map[string]string{
		"/usr/bin/containerd": es.containerd, "/usr/sbin/dockerd": es.dockerd, "/usr/bin/crictl": es.crictl,
	} {
		if src != "" {
			nd.binaries[hostPath] = src
		}
	}
	for _, root := range []string{nd.live, nd.fresh} {
		if err := copyTree(nd.pristine, root); err != nil {
			return nil, err
		}
		if err := nd.linkBinaries(root); err != nil {
			return nil, err
		}
	}
	if err := copyTree(nd.pristine, nd.floor); err != nil {
		return nil, err
	}
	return nd, nil
}

// linkBinaries hard-links the engine binaries into root: every root shares
// their inodes, so the version cache of one root is valid in another (its
// key is the host path, device, inode, size, mtime and ctime).
func (nd *node) linkBinaries(root string) error {
	for hostPath, src := range nd.binaries {
		dst := filepath.Join(root, hostPath)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Link(src, dst); err != nil {
			return fmt.Errorf("linking %s into %s: %w", src, root, err)
		}
	}
	return nil
}

// reset puts root back to the node before its first sync, binaries
// and the engine version cache kept (the cache as a warm node has it).
func (nd *node) reset(root string, binaries bool) error {
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if binaries && e.Name() == "usr" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return err
		}
	}
	if err := copyTree(nd.pristine, root); err != nil {
		return err
	}
	if binaries {
		if b, err := os.ReadFile(filepath.Join(nd.live, versionsFile)); err == nil {
			if err := os.WriteFile(filepath.Join(root, versionsFile), b, 0o600); err != nil {
				return err
			}
		}
	}
	return syncFS(root)
}

const versionsFile = "var/lib/mirrorctl/versions.json"

// syncFS flushes the filesystem holding dir, so that a measured run does
// not pay for the bench's own preparation.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// registriesPerFile is how many registries one spec file holds: 1,000
// take about 450 KB, and a spec file may be at most 1 MiB.
const registriesPerFile = 1000

// writeSpec writes a spec of n registries with two mirrors each, every
// mirror with credentials (a password file) and a CA, all four engines on.
// The first registry is Docker Hub, so that dockerd gets its mirrors too.
// Past registriesPerFile, the rest go to conf.d drop-ins of that many.
func writeSpec(dir string, n int, ca []byte) error {
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "mirror-password"), []byte("bench-password\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "certs", "mirror-ca.pem"), ca, 0o644); err != nil {
		return err
	}
	top := "# mirrorctl bench-node: generated, do not edit\n" + registriesYAML(1, min(n, registriesPerFile), "") +
		"engines:\n  containerd:\n    enabled: true\n  docker:\n    enabled: true\n    auth_users: [root]\n  k3s:\n    enabled: true\n  crictl:\n    enabled: true\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(top), 0o644); err != nil {
		return err
	}
	for first := registriesPerFile + 1; first <= n; first += registriesPerFile {
		if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
			return err
		}
		name := filepath.Join(dir, "conf.d", fmt.Sprintf("%06d.yaml", first))
		data := "# mirrorctl bench-node: generated, do not edit\n" + registriesYAML(first, min(n, first+registriesPerFile-1), "../")
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// registriesYAML is the mirrors: and configs: of registries first to last;
// up is the way from the file's directory to the spec's.
func registriesYAML(first, last int, up string) string {
	var b strings.Builder
	b.WriteString("mirrors:\n")
	var hosts []string
	for i := first; i <= last; i++ {
		reg := fmt.Sprintf("registry%d.example.com", i)
		if i == 1 {
			reg = "docker.io"
		}
		a, c := fmt.Sprintf("mirror-a%d.example.internal:5000", i), fmt.Sprintf("mirror-b%d.example.internal", i)
		hosts = append(hosts, a, c)
		fmt.Fprintf(&b, "  %s:\n    endpoint:\n      - https://%s\n      - https://%s\n", reg, a, c)
	}
	b.WriteString("configs:\n")
	for i, h := range hosts {
		fmt.Fprintf(&b, "  %s:\n    auth:\n      username: puller%d\n      password_file: %ssecrets/mirror-password\n    tls:\n      ca_file: %scerts/mirror-ca.pem\n",
			h, first+i/2, up, up)
	}
	return b.String()
}

// writePristine lays out a Debian 12 node's files the engines read: the
// packaged config.toml, the units, root's home and /etc/passwd.
func writePristine(root string, configToml []byte) error {
	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{{"etc/containerd", 0o755}, {"etc/docker", 0o755}, {"lib/systemd/system", 0o755}, {"root", 0o700}, {"var/lib/mirrorctl", 0o700}} {
		if err := os.MkdirAll(filepath.Join(root, d.path), 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(root, d.path), d.mode); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		"etc/containerd/config.toml": configToml,
		"etc/passwd":                 []byte("root:x:0:0:root:/root:/bin/bash\n"),
	}
	for _, unit := range []string{"containerd.service", "docker.service"} {
		b, err := os.ReadFile(filepath.Join("/lib/systemd/system", unit))
		if err != nil {
			b = []byte("[Service]\nExecStart=/usr/bin/" + strings.TrimSuffix(unit, ".service") + "\n")
		}
		files["lib/systemd/system/"+unit] = b
	}
	for p, b := range files {
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies src's directories and regular files into dst (created
// as needed), modes kept.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, fi.Mode().Perm())
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, b, fi.Mode().Perm()); err != nil {
				return err
			}
			return os.Chmod(target, fi.Mode().Perm())
		}
		return fmt.Errorf("%s: not a file or directory", p)
	})
}

// snapshot records every directory and file under root.
type snapEntry struct {
	dir  bool
	mode fs.FileMode
	ino  uint64
	sum  [32]byte
	size int64
}

func snapshot(root string) (map[string]snapEntry, error) {
	out := map[string]snapEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." || rel == "usr" || strings.HasPrefix(rel, "usr/") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := snapEntry{dir: d.IsDir(), mode: fi.Mode().Perm(), size: fi.Size()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.ino = st.Ino
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.sum = sha256.Sum256(b)
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	return out, err
}

// writeManifest records what a changed sync wrote under root, compared
// with before: new directories and new or changed files (the lock file,
// which is only locked, left out).
func (nd *node) writeManifest(root string, before map[string]snapEntry) error {
	after, err := snapshot(root)
	if err != nil {
		return err
	}
	var paths []string
	for p := range after {
		paths = append(paths, p)
	}
	slices.Sort(paths) // a directory before what it holds
	var entries []manifest.Entry
	var size int64
	for _, p := range paths {
		a := after[p]
		b, existed := before[p]
		if p == "var/lib/mirrorctl/lock" || (existed && a.dir == b.dir && a.sum == b.sum && a.ino == b.ino) {
			continue
		}
		if a.dir {
			if !existed {
				entries = append(entries, manifest.Entry{Dir: true, Mode: a.mode, Path: p})
			}
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return err
		}
		size += int64(len(data))
		entries = append(entries, manifest.Entry{Mode: a.mode, Path: p, Data: data})
	}
	nd.changedN, nd.changedKB = len(entries), size>>10
	return os.WriteFile(nd.manifest, manifest.Encode(entries), 0o600)
}

// selfSignedCA returns a CA certificate (PEM) for the spec's mirrors.
func selfSignedCA() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mirrorctl bench-node mirror CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// stageBinary copies src into dir once (kept while src's size and mtime
// stay the same), so that the roots link to the bench's own copy and never
// to the host's files.
func stageBinary(src, dir, name string) (string, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", src)
	}
	dst := filepath.Join(dir, name)
	if di, err := os.Stat(dst); err == nil && di.Size() == fi.Size() && di.ModTime().Equal(fi.ModTime()) {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp, dst)
}

// debianBinary returns path if it exists, or else the same file from the
// Debian package pkg, downloaded (apt-get download, no installation, no
// service started) and unpacked under dir.
func debianBinary(path, pkg, dir string) (string, string, error) {
	if _, err := os.Stat(path); err == nil {
		return path, "installed package " + pkg, nil
	}
	unpacked := filepath.Join(dir, "deb-"+pkg)
	if _, err := os.Stat(filepath.Join(unpacked, path)); err == nil {
		return filepath.Join(unpacked, path), "package " + pkg + " (unpacked, not installed)", nil
	}
	dl := filepath.Join(dir, "download")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return "", "", err
	}
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = dl
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("apt-get download %s: %v: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	debs, _ := filepath.Glob(filepath.Join(dl, pkg+"_*.deb"))
	if len(debs) == 0 {
		return "", "", fmt.Errorf("apt-get download %s left no .deb", pkg)
	}
	if out, err := exec.Command("dpkg-deb", "-x", debs[len(debs)-1], unpacked).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("unpacking %s: %v: %s", debs[len(debs)-1], err, out)
	}
	if _, err := os.Stat(filepath.Join(unpacked, path)); err != nil {
		return "", "", fmt.Errorf("package %s has no %s", pkg, path)
	}
	return filepath.Join(unpacked, path), "package " + pkg + " (unpacked, not installed)", nil
}

// packagedConfigToml is the config.toml Debian's containerd package
// installs, from the host or the unpacked package.
func packagedConfigToml(dir string) ([]byte, error) {
	for _, p := range []string{"/etc/containerd/config.toml", filepath.Join(dir, "deb-containerd", "etc/containerd/config.toml")} {
		if b, err := os.ReadFile(p); err == nil {
			return b, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, errors.New("no config.toml from the containerd package")
}
