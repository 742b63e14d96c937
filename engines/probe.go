package engines

import (
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mirrorctl/mirrorctl/spec"
)

// This file holds the small host probes that the Docker, k3s and crictl
// adapters share: does a file exist, where is a unit file, which version did
// a binary print, and does the spec's toggle let us manage the engine.

// systemdUnitDirs are the directories systemd loads unit files from, highest
// precedence first (systemd.unit(5), "Unit File Load Path").
var systemdUnitDirs = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
}

// hostHas reports whether hostPath exists under fsys (file, directory or socket).
func hostHas(fsys fs.FS, hostPath string) bool {
	_, err := fs.Stat(fsys, FSPath(hostPath))
	return err == nil
}

// firstPresent returns the first of hostPaths that exists under fsys, or "".
func firstPresent(fsys fs.FS, hostPaths ...string) string {
	for _, p := range hostPaths {
		if hostHas(fsys, p) {
			return p
		}
	}
	return ""
}

// findUnitFile returns the host path of the unit file systemd would load for
// unit ("docker.service"), or "" when none is installed.
func findUnitFile(fsys fs.FS, unit string) string {
	for _, dir := range systemdUnitDirs {
		if p := path.Join(dir, unit); hostHas(fsys, p) {
			return p
		}
	}
	return ""
}

// unitDropIns returns the unit's drop-in files (<unit>.d/*.conf) in the
// order systemd applies them: sorted by file name, a name in a
// higher-precedence directory hiding the same name in a lower one.
func unitDropIns(fsys fs.FS, unit string) []string {
	byName := map[string]string{}
	var names []string
	for _, dir := range systemdUnitDirs {
		d := path.Join(dir, unit+".d")
		entries, err := fs.ReadDir(fsys, FSPath(d))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".conf") {
				continue
			}
			if _, seen := byName[e.Name()]; !seen {
				byName[e.Name()] = path.Join(d, e.Name())
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = byName[n]
	}
	return out
}

// versionInOutput finds the first dotted version number in a --version line:
// "Docker version 20.10.24+dfsg1, build 297e128" → "20.10.24",
// "crictl version v1.26.0" → "1.26.0".
var versionInOutput = regexp.MustCompile(`\bv?(\d+\.\d+(?:\.\d+)?)`)

func leadingVersion(out string) string {
	m := versionInOutput.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// releaseAtLeast reports whether version ("25.0.3", "1.36.0") is at least
// major.minor. An unknown or unparsable version is not.
func releaseAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(leadingVersion(version), ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	mnr, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || (maj == major && mnr >= minor)
}

// toggleManaged applies an engine's `enabled:` toggle to what detection
// found, with the words for the detect log line.
func toggleManaged(t spec.Toggle, found bool) (bool, string) {
	switch t {
	case spec.Off:
		return false, "disabled in spec"
	case spec.On:
		if !found {
			return true, "not found, enabled in spec"
		}
		return true, ""
	}
	return found, ""
}

// joinReason joins the non-empty parts of a detection reason.
func joinReason(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

// unitName completes a unit name from the spec: systemd's D-Bus API wants
// "k3s-agent.service" where systemctl accepts "k3s-agent".
func unitName(u string) string {
	if u != "" && !strings.Contains(u, ".") {
		return u + ".service"
	}
	return u
}
