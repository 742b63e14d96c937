package engines

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// This file is containers/image's registries.conf loader
// (pkg/sysregistriesv2) as doctor needs it: which files root's CRI-O and
// Podman read, in which order, how they merge, and what makes the library
// refuse them (then every Podman command fails). engines/containerstest
// checks it against the library on generated files.
//
// Files: root's ~/.config/containers/registries.conf when it exists (with
// only its own registries.conf.d), else /etc/containers/registries.conf,
// then /etc/containers/registries.conf.d/*.conf and
// ~/.config/containers/registries.conf.d/*.conf, each directory in name
// order. Per file, the first [[registry]] of a prefix wins; across files, a
// later file's table replaces an earlier one with the same prefix whole,
// and a later file's top-level key (unqualified-search-registries,
// credential-helpers, short-name-mode) replaces the earlier value.

const (
	containersSystemConfDir = "/etc/containers/registries.conf.d"
	// maxRegistriesFiles bounds how many drop-ins are read.
	maxRegistriesFiles = 256
)

// regSource is one place an image can be pulled from: a [[registry.mirror]]
// or a [[registry]]'s own location.
type regSource struct {
	Location       string `toml:"location"`
	Insecure       bool   `toml:"insecure"`
	PullFromMirror string `toml:"pull-from-mirror"`
	// NamespaceProxy adds ?ns= to every request (newer containers/image).
	NamespaceProxy string `toml:"namespace-proxy"`
}

// regEntry is one [[registry]] table.
type regEntry struct {
	Prefix             string      `toml:"prefix"`
	Location           string      `toml:"location"`
	Insecure           bool        `toml:"insecure"`
	PullFromMirror     string      `toml:"pull-from-mirror"`
	NamespaceProxy     string      `toml:"namespace-proxy"`
	Blocked            bool        `toml:"blocked"`
	MirrorByDigestOnly bool        `toml:"mirror-by-digest-only"`
	Mirrors            []regSource `toml:"mirror"`
	file               string      // the file whose table is in effect
}

func (r regEntry) source() regSource {
	return regSource{Location: r.Location, Insecure: r.Insecure, NamespaceProxy: r.NamespaceProxy}
}

// registriesConfFile is one file as the library decodes it. The v1 keys
// are read only to refuse them, as the library does.
type registriesConfFile struct {
	Registry          []regEntry        `toml:"registry"`
	Unqualified       *[]string         `toml:"unqualified-search-registries"`
	CredentialHelpers *[]string         `toml:"credential-helpers"`
	ShortNameMode     string            `toml:"short-name-mode"`
	Aliases           map[string]string `toml:"aliases"`
	V1                *struct {
		Search   *v1List `toml:"search"`
		Insecure *v1List `toml:"insecure"`
		Block    *v1List `toml:"block"`
	} `toml:"registries"`
}

type v1List struct {
	Registries *[]string `toml:"registries"`
}

// registriesConf is the merged configuration.
type registriesConf struct {
	files      []string   // read, in order
	registries []regEntry // sorted by prefix, one per prefix
	search     []string   // unqualified-search-registries
	searchFrom string     // the file that set them
	helpers    []string   // credential-helpers
	mode       string     // short-name-mode
	aliases    map[string]alias
}

type alias struct {
	value, file string // value "" cancels an earlier alias
}

// confError is a file containers/image refuses: Podman, Buildah and Skopeo
// then fail on every command.
type confError struct {
	file string
	err  error
}

func (e *confError) Error() string { return e.file + ": " + e.err.Error() }
func (e *confError) Unwrap() error { return e.err }

// registriesFiles lists the files containers/image reads for a process
// whose home is home, in order.
func registriesFiles(fsys fs.FS, home string) ([]string, error) {
	userConf := path.Join(home, ".config/containers/registries.conf")
	main, dirs := containersMainConf, []string{containersSystemConfDir, userConf + ".d"}
	if hostHas(fsys, userConf) {
		main, dirs = userConf, []string{userConf + ".d"}
	}
	files := []string{main}
	for _, dir := range dirs {
		ents, err := fs.ReadDir(fsys, FSPath(dir))
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		for _, e := range ents { // sorted by name
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".conf") {
				continue
			}
			if len(files) > maxRegistriesFiles {
				return nil, fmt.Errorf("%s: more than %d drop-ins", dir, maxRegistriesFiles)
			}
			files = append(files, path.Join(dir, e.Name()))
		}
	}
	return files, nil
}

// loadRegistriesConf reads and merges files as containers/image does. A
// missing main file is an empty one; a missing drop-in (removed since it
// was listed) is skipped.
func loadRegistriesConf(fsys fs.FS, files []string) (*registriesConf, error) {
	c := &registriesConf{aliases: map[string]alias{}}
	for _, f := range files {
		data, ok, err := readOptional(fsys, f)
		if err != nil {
			return nil, &confError{file: f, err: err}
		}
		if !ok {
			continue
		}
		c.files = append(c.files, f)
		if err := c.merge(f, data); err != nil {
			return nil, &confError{file: f, err: err}
		}
	}
	if len(c.helpers) == 0 {
		c.helpers = []string{containersAuthHelper}
	}
	if c.mode == "" {
		c.mode = "permissive"
	}
	return c, nil
}

// containersAuthHelper is the credential helper that means the auth files.
const containersAuthHelper = "containers-auth.json"

// merge adds one file (loadConfigFile, then updateWithConfigurationFrom).
func (c *registriesConf) merge(file string, data []byte) error {
	var rf registriesConfFile
	if err := toml.Unmarshal(data, &rf); err != nil {
		return fmt.Errorf("not valid TOML: %s", tomlErrorLine(err))
	}
	if v1 := rf.V1; v1 != nil && (v1.Search.set() || v1.Insecure.set() || v1.Block.set()) {
		return errors.New("registries.conf must be in v2 format but is in v1 ([registries.search], [registries.insecure] or [registries.block])")
	}
	regs, err := postProcessRegistries(rf.Registry)
	if err != nil {
		return err
	}
	var search []string
	if rf.Unqualified != nil {
		search = []string{}
		for _, s := range *rf.Unqualified {
			s, err := parseRegLocation(s)
			if err != nil {
				return err
			}
			if !anchoredDomain.MatchString(s) {
				return fmt.Errorf("invalid unqualified-search-registries entry %q", s)
			}
			search = append(search, s)
		}
	}
	switch rf.ShortNameMode {
	case "", "disabled", "enforcing", "permissive":
	default:
		return fmt.Errorf("invalid short-name mode: %q", rf.ShortNameMode)
	}
	for _, r := range regs {
		if strings.HasPrefix(r.Prefix, "*.") && strings.ContainsAny(r.Prefix, "/@:") {
			return fmt.Errorf("wildcarded prefix should be in the format: *.example.com. Current prefix %q is incorrectly formatted", r.Prefix)
		}
	}
	for _, name := range sortedKeys(rf.Aliases) {
		if err := checkAlias(name, rf.Aliases[name]); err != nil {
			return fmt.Errorf("validating short-name aliases: %w", err)
		}
	}

	byPrefix := map[string]regEntry{}
	for _, r := range c.registries {
		byPrefix[r.Prefix] = r
	}
	for _, r := range regs {
		r.file = file
		byPrefix[r.Prefix] = r
	}
	c.registries = c.registries[:0]
	for _, p := range sortedKeys(byPrefix) {
		c.registries = append(c.registries, byPrefix[p])
	}
	if search != nil {
		c.search, c.searchFrom = search, file
	}
	if rf.CredentialHelpers != nil {
		c.helpers = *rf.CredentialHelpers
	}
	if rf.ShortNameMode != "" {
		c.mode = rf.ShortNameMode
	}
	for name, v := range rf.Aliases {
		c.aliases[name] = alias{value: v, file: file}
	}
	return nil
}

func (l *v1List) set() bool { return l != nil && l.Registries != nil }

// postProcessRegistries checks and normalises one file's tables: prefix
// defaults to location, no scheme, the mirror settings, one location with
// one insecure and one blocked value; the first table of a prefix wins.
func postProcessRegistries(regs []regEntry) ([]regEntry, error) {
	byLocation := map[string][]int{}
	for i := range regs {
		r := &regs[i]
		var err error
		if r.Location, err = parseRegLocation(r.Location); err != nil {
			return nil, err
		}
		if r.Prefix == "" {
			if r.Location == "" {
				return nil, errors.New("invalid condition: both location and prefix are unset")
			}
			r.Prefix = r.Location
		} else {
			if r.Prefix, err = parseRegLocation(r.Prefix); err != nil {
				return nil, err
			}
			if !strings.HasPrefix(r.Prefix, "*.") && r.Location == "" {
				return nil, errors.New("invalid condition: location is unset and prefix is not in the format: *.example.com")
			}
		}
		if r.PullFromMirror != "" {
			return nil, fmt.Errorf("pull-from-mirror must not be set for a non-mirror registry %q", r.Prefix)
		}
		for j := range r.Mirrors {
			m := &r.Mirrors[j]
			if m.Location, err = parseRegLocation(m.Location); err != nil {
				return nil, err
			}
			if m.Location == "" {
				return nil, errors.New("invalid condition: mirror location is unset")
			}
			if r.MirrorByDigestOnly && m.PullFromMirror != "" {
				return nil, fmt.Errorf("cannot set mirror usage mirror-by-digest-only for the registry (%q) and pull-from-mirror for per-mirror (%q) at the same time", r.Prefix, m.Location)
			}
			switch m.PullFromMirror {
			case "", "all", "digest-only", "tag-only":
			default:
				return nil, fmt.Errorf("unsupported pull-from-mirror value %q for mirror %q", m.PullFromMirror, m.Location)
			}
		}
		key := cmp.Or(r.Location, r.Prefix)
		byLocation[key] = append(byLocation[key], i)
	}
	for _, r := range regs {
		for _, j := range byLocation[cmp.Or(r.Location, r.Prefix)] {
			o := regs[j]
			if r.Insecure != o.Insecure {
				return nil, fmt.Errorf("registry '%s' is defined multiple times with conflicting 'insecure' setting", r.Location)
			}
			if r.Blocked != o.Blocked {
				return nil, fmt.Errorf("registry '%s' is defined multiple times with conflicting 'blocked' setting", r.Location)
			}
		}
	}
	var out []regEntry
	seen := map[string]bool{}
	for _, r := range regs {
		if !seen[r.Prefix] {
			seen[r.Prefix] = true
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b regEntry) int { return strings.Compare(a.Prefix, b.Prefix) })
	return out, nil
}

// parseRegLocation trims trailing slashes and refuses a URI scheme.
func parseRegLocation(s string) (string, error) {
	t := strings.TrimRight(s, "/")
	if strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://") {
		return "", fmt.Errorf("invalid location '%s': URI schemes are not supported", s)
	}
	return t, nil
}

// findRegistry is the table with the longest prefix matching name (a
// registry, namespace or repository), nil when none does. On a tie the
// first in prefix order wins.
func (c *registriesConf) findRegistry(name string) *regEntry {
	var best *regEntry
	for i := range c.registries {
		r := &c.registries[i]
		if refMatchingPrefix(name, r.Prefix) != -1 && (best == nil || len(r.Prefix) > len(best.Prefix)) {
			best = r
		}
	}
	return best
}

// refMatchingPrefix is the length of the part of ref that prefix matches,
// or -1: a whole host, namespace or repository, or a subdomain of *.domain.
// Like the library, "example.com" also matches "example.com:5000".
func refMatchingPrefix(ref, prefix string) int {
	if strings.HasPrefix(prefix, "*.") {
		i := strings.Index(ref, prefix[1:])
		if i == -1 || strings.Contains(ref[:i], "/") {
			return -1
		}
		i += len(prefix) - 1
		if i == len(ref) || strings.ContainsRune(":/@", rune(ref[i])) {
			return i
		}
		return -1
	}
	switch {
	case ref == prefix:
		return len(prefix)
	case len(ref) > len(prefix) && strings.HasPrefix(ref, prefix) && strings.ContainsRune(":/@", rune(ref[len(prefix)])):
		return len(prefix)
	}
	return -1
}

// A pullSource is one source of an image: the reference rewritten for it.
type pullSource struct {
	regSource
	ref    string // host/path/repo plus :tag or @digest
	mirror bool   // a [[registry.mirror]], not the table's location
}

// pullSources are the sources of ref (a full reference) under r, in the
// order tried: the mirrors (without those that do not serve this kind of
// reference), then the location. A rewrite that does not give a canonical
// reference is an error of the whole pull, as in the library.
func pullSources(r *regEntry, ref string, digest bool) ([]pullSource, error) {
	var out []pullSource
	for _, m := range r.Mirrors {
		switch {
		case r.MirrorByDigestOnly && !digest:
			continue
		case !r.MirrorByDigestOnly && m.PullFromMirror == "digest-only" && !digest,
			!r.MirrorByDigestOnly && m.PullFromMirror == "tag-only" && digest:
			continue
		}
		out = append(out, pullSource{regSource: m, mirror: true})
	}
	out = append(out, pullSource{regSource: r.source()})
	n := refMatchingPrefix(ref, r.Prefix)
	if n == -1 {
		return nil, fmt.Errorf("invalid prefix '%v' for reference '%v'", r.Prefix, ref)
	}
	for i := range out {
		if out[i].Location == "" {
			out[i].ref = ref // *.domain without a location: the reference itself
			continue
		}
		out[i].ref = out[i].Location + ref[n:]
		if err := canonicalName(out[i].ref); err != nil {
			return nil, fmt.Errorf("rewriting reference: %w", err)
		}
	}
	return out, nil
}

// The reference grammar of containers/image's docker/reference fork (no
// IPv6 hosts there).
var (
	domainPat      = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?`
	componentPat   = `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
	anchoredDomain = regexp.MustCompile(`^` + domainPat + `$`)
	anchoredName   = regexp.MustCompile(`^(?:(` + domainPat + `)/)?(` + componentPat + `(?:/` + componentPat + `)*)$`)
	hexIdentifier  = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// splitRef cuts a reference into its name and ":tag" or "@digest".
func splitRef(ref string) (name, rest string) {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		name, rest = ref[:i], ref[i:]
	} else {
		name = ref
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, rest = name[:i], name[i:]+rest
	}
	return name, rest
}

// canonicalName checks that ref's name is what reference.ParseNamed takes:
// it parses, and normalising it (docker.io, library/) changes nothing.
func canonicalName(ref string) error {
	name, _ := splitRef(ref)
	if hexIdentifier.MatchString(name) {
		return fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", name)
	}
	first, rest, ok := strings.Cut(name, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return fmt.Errorf("%s: repository name must be canonical (no registry host)", ref)
	}
	if first == "index.docker.io" || (first == dockerHub && !strings.Contains(rest, "/")) {
		return fmt.Errorf("%s: repository name must be canonical (Docker Hub is docker.io/<namespace>/<name>)", ref)
	}
	if strings.ToLower(rest) != rest {
		return fmt.Errorf("%s: repository name must be lowercase", ref)
	}
	if len(name) > 255 {
		return fmt.Errorf("%s: repository name must not be more than 255 characters", ref)
	}
	if !anchoredName.MatchString(name) {
		return fmt.Errorf("%s: invalid reference format", ref)
	}
	return nil
}

// refDomain is the host[:port] of a name.
func refDomain(name string) string {
	d, _, _ := strings.Cut(name, "/")
	return d
}

// refPath is a name without its host.
func refPath(name string) string {
	_, p, _ := strings.Cut(name, "/")
	return p
}

// checkAlias is the library's check of a short-name alias: the name is a
// repository without a registry, tag or digest; a value, when not empty,
// is a repository with a registry and without a tag or digest.
func checkAlias(name, value string) error {
	n, rest := splitRef(name)
	switch first, _, _ := strings.Cut(n, "/"); {
	case rest != "":
		return fmt.Errorf("invalid short name %q: must not contain a tag or digest", name)
	case strings.ContainsAny(first, ".:") || first == "localhost":
		return fmt.Errorf("invalid short name %q: must not contain registry", name)
	case !anchoredName.MatchString(n):
		return fmt.Errorf("cannot parse short name: %q", name)
	}
	if value == "" {
		return nil
	}
	v, rest := splitRef(value)
	first, _, ok := strings.Cut(v, "/")
	switch {
	case rest != "":
		return fmt.Errorf("invalid alias %q: must not contain a tag or digest", value)
	case !ok || (!strings.ContainsAny(first, ".:") && first != "localhost"):
		return fmt.Errorf("invalid alias %q: must contain registry and repository", value)
	case !anchoredName.MatchString(v):
		return fmt.Errorf("parsing alias %q: invalid reference format", value)
	}
	return nil
}
