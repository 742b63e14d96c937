// Command image builds mirrorctl's container image without a Docker daemon,
// with go-containerregistry (pinned in packaging/go.mod): per architecture,
// one layer holding the static binary (and a CA bundle for https sources)
// on an empty base, i.e. FROM scratch; the images go into one OCI index,
// written as an OCI layout directory, optionally as a tar of that layout
// (`ctr image import` reads it) and pushed to a registry.
//
//	go run ./image --binary linux/amd64=../build/amd64/mirrorctl \
//	    --binary linux/arm64=../build/arm64/mirrorctl --tag mirrorctl:dev \
//	    --layout ../dist/image [--tar ../dist/mirrorctl-image.tar] [--push 127.0.0.1:5000/mirrorctl:dev]
//
// Every timestamp is SOURCE_DATE_EPOCH (0 when unset), so the same binaries
// give the same digests.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type binaries map[string]string // "linux/amd64" -> path

func (b binaries) String() string { return fmt.Sprint(map[string]string(b)) }
func (b binaries) Set(s string) error {
	plat, file, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(plat, "linux/") || file == "" {
		return fmt.Errorf("want linux/ARCH=FILE, got %q", s)
	}
	b[plat] = file
	return nil
}

func main() {
	bins := binaries{}
	flag.Var(bins, "binary", "linux/ARCH=FILE: the static mirrorctl for one platform (repeat per architecture)")
	tag := flag.String("tag", "mirrorctl:dev", "the image name recorded in the layout (and in the tar, for ctr image import)")
	dir := flag.String("layout", "", "write the OCI image layout to this directory (replaced)")
	tarFile := flag.String("tar", "", "also write the layout as a tar file")
	push := flag.String("push", "", "also push the index to this reference (http allowed for a local registry)")
	caBundle := flag.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "CA certificates for https sources, copied to the same path in the image (empty: none)")
	version := flag.String("version", "", "org.opencontainers.image.version label")
	flag.Parse()
	if len(bins) == 0 || *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: image --binary linux/ARCH=FILE... --layout DIR [--tar FILE] [--push REF]")
		os.Exit(2)
	}
	if err := run(bins, *tag, *dir, *tarFile, *push, *caBundle, *version); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func epoch() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Unix(0, 0).UTC()
}

func run(bins binaries, tag, dir, tarFile, push, caBundle, version string) error {
	ref, err := name.ParseReference(tag, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("--tag: %w", err)
	}
	var ca []byte
	if caBundle != "" {
		if ca, err = os.ReadFile(caBundle); err != nil {
			return fmt.Errorf("--ca-bundle: %w (give --ca-bundle= for none)", err)
		}
	}
	plats := make([]string, 0, len(bins))
	for p := range bins {
		plats = append(plats, p)
	}
	sort.Strings(plats)

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, plat := range plats {
		img, err := image(plat, bins[plat], ca, version)
		if err != nil {
			return fmt.Errorf("%s: %w", plat, err)
		}
		d, _ := img.Digest()
		fmt.Printf("%s %s\n", plat, d)
		arch := strings.TrimPrefix(plat, "linux/")
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}

	// containerd names an imported image by io.containerd.image.name; OCI's
	// ref.name is the tag alone.
	full := ref.Context().Name() + ":" + ref.Identifier()
	full = strings.Replace(full, "index.docker.io/", "docker.io/", 1)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.Identifier(),
		"io.containerd.image.name":          full,
	})); err != nil {
		return err
	}
	fmt.Printf("index %s\nlayout %s (%s)\n", d, dir, full)
	if tarFile != "" {
		if err := tarDir(dir, tarFile); err != nil {
			return fmt.Errorf("--tar: %w", err)
		}
		fmt.Printf("tar %s\n", tarFile)
	}
	if push != "" {
		pref, err := name.ParseReference(push, name.Insecure)
		if err != nil {
			return fmt.Errorf("--push: %w", err)
		}
		if err := remote.WriteIndex(pref, idx, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing %s: %w", pref, err)
		}
		fmt.Printf("pushed %s@%s\n", pref, d)
	}
	return nil
}

// image is one platform's image: FROM scratch, one layer.
func image(plat, bin string, ca []byte, version string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(data, []byte("\x7fELF")) {
		return nil, fmt.Errorf("%s is not an ELF binary", bin)
	}
	t := epoch()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entry := func(name string, mode int64, body []byte, typ byte) error {
		h := &tar.Header{Name: name, Mode: mode, ModTime: t, Typeflag: typ, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	dirs := []string{"etc/", "etc/mirrorctl/", "tmp/", "usr/", "usr/bin/"}
	if ca != nil {
		dirs = append(dirs, "etc/ssl/", "etc/ssl/certs/")
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := entry(d, mode, nil, tar.TypeDir); err != nil {
			return nil, err
		}
	}
	if ca != nil {
		if err := entry("etc/ssl/certs/ca-certificates.crt", 0o644, ca, tar.TypeReg); err != nil {
			return nil, err
		}
	}
	if err := entry("usr/bin/mirrorctl", 0o755, data, tar.TypeReg); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = strings.TrimPrefix(plat, "linux/")
	cf.Created = v1.Time{Time: t}
	cf.Config.Entrypoint = []string{"/usr/bin/mirrorctl"}
	cf.Config.Cmd = []string{"version"}
	cf.Config.User = "0:0"
	cf.Config.Env = []string{"PATH=/usr/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "mirrorctl",
		"org.opencontainers.image.description": "Configure every container engine on a node to pull through registry mirrors",
		"org.opencontainers.image.source":      "https://github.com/mirrorctl/mirrorctl",
		"org.opencontainers.image.version":     version,
	}
	cf.History = []v1.History{{Created: v1.Time{Time: t}, CreatedBy: "mirrorctl packaging/image: /usr/bin/mirrorctl (static)", Comment: "FROM scratch"}}
	return mutate.ConfigFile(img, cf)
}

// tarDir writes the layout directory as a tar with fixed owners and times.
func tarDir(dir, out string) error {
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	t := epoch()
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	for _, p := range paths {
		if err != nil {
			break
		}
		var st os.FileInfo
		if st, err = os.Stat(p); err != nil {
			break
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: t, Mode: 0o644, Typeflag: tar.TypeReg, Size: st.Size(), Format: tar.FormatPAX}
		if st.IsDir() {
			h.Name += "/"
			h.Mode, h.Typeflag, h.Size = 0o755, tar.TypeDir, 0
		}
		if err = tw.WriteHeader(h); err != nil {
			break
		}
		if !st.IsDir() {
			var b []byte
			if b, err = os.ReadFile(p); err == nil {
				_, err = tw.Write(b)
			}
		}
	}
	err = errors.Join(err, tw.Close(), f.Close())
	if err != nil {
		os.Remove(out + ".tmp")
		return err
	}
	return os.Rename(out+".tmp", out)
}
