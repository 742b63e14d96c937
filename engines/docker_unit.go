package engines

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// dockerFlags is what the docker unit already sets on dockerd's command
// line. dockerd refuses to start when a directive is given both as a flag
// and in daemon.json ("the following directives are specified both as a flag
// and in the configuration file"), and a SIGHUP reload with both fails.
type dockerFlags struct {
	mirror   bool // --registry-mirror
	insecure bool // --insecure-registry
	// where names the unit file or drop-in that sets them, for the warning.
	where string

	// What decides dockerd's image store (docker_store.go), from the
	// command line and the unit's environment.
	snapshotter   *bool  // --feature containerd-snapshotter[=bool]
	storageDriver string // --storage-driver, -s, or $DOCKER_DRIVER
	usernsRemap   string // --userns-remap
	dataRoot      string // --data-root
}

// scanDockerUnit reads unit's ExecStart= as systemd would assemble it from
// the unit file and its drop-ins (an empty ExecStart= resets the list), with
// $VAR and ${VAR} expanded from Environment= and EnvironmentFile= (Debian's
// docker.io unit passes $DOCKER_OPTS from /etc/default/docker).
func scanDockerUnit(fsys fs.FS, unit string) dockerFlags {
	main := findUnitFile(fsys, unit)
	if main == "" {
		return dockerFlags{}
	}
	type execLine struct{ cmd, file string }
	var execs []execLine
	env := map[string]string{}
	for _, file := range append([]string{main}, unitDropIns(fsys, unit)...) {
		data, _, _ := readOptional(fsys, file)
		for _, kv := range unitServiceSettings(data) {
			switch kv[0] {
			case "ExecStart":
				if kv[1] == "" {
					execs = nil
					continue
				}
				execs = append(execs, execLine{kv[1], file})
			case "Environment":
				for _, a := range splitUnitWords(kv[1]) {
					if k, v, ok := strings.Cut(a, "="); ok {
						env[k] = v
					}
				}
			case "EnvironmentFile":
				envFile, _, _ := readOptional(fsys, strings.TrimPrefix(kv[1], "-"))
				for _, line := range strings.Split(string(envFile), "\n") {
					line = strings.TrimSpace(line)
					if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
						env[strings.TrimSpace(strings.TrimPrefix(k, "export "))] = strings.Trim(strings.TrimSpace(v), `"'`)
					}
				}
			}
		}
	}
	f := dockerFlags{storageDriver: env["DOCKER_DRIVER"]}
	for _, e := range execs {
		cmd := os.Expand(e.cmd, func(k string) string { return env[k] })
		words := strings.Fields(cmd)
		for i := range words {
			words[i] = strings.Trim(words[i], `"'`)
		}
		for i, w := range words {
			m := w == "--registry-mirror" || strings.HasPrefix(w, "--registry-mirror=")
			in := w == "--insecure-registry" || strings.HasPrefix(w, "--insecure-registry=")
			if (m || in) && f.where == "" {
				f.where = e.file
			}
			f.mirror = f.mirror || m
			f.insecure = f.insecure || in
			if v, ok := flagValue(words, i, "--storage-driver", "-s"); ok {
				f.storageDriver = v
			}
			if v, ok := flagValue(words, i, "--userns-remap"); ok {
				f.usernsRemap = v
			}
			if v, ok := flagValue(words, i, "--data-root"); ok {
				f.dataRoot = v
			}
			if v, ok := flagValue(words, i, "--feature"); ok {
				// As dockerd's SetOpts reads it: a bare name is true.
				name, val, hasVal := strings.Cut(v, "=")
				on, err := true, error(nil)
				if hasVal {
					on, err = strconv.ParseBool(val)
				}
				if name == "containerd-snapshotter" && err == nil {
					f.snapshotter = &on
				}
			}
		}
	}
	return f
}

// flagValue returns the value of the option at words[i] when it is one of
// names, written as "--name=value" or "--name value".
func flagValue(words []string, i int, names ...string) (string, bool) {
	for _, n := range names {
		if v, ok := strings.CutPrefix(words[i], n+"="); ok {
			return v, true
		}
		if words[i] == n && i+1 < len(words) {
			return words[i+1], true
		}
	}
	return "", false
}

// unitServiceSettings returns the key=value settings of a unit file's
// [Service] section in order, with continuation lines joined.
func unitServiceSettings(data []byte) [][2]string {
	var out [][2]string
	inService := false
	var pending string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			inService = line == "[Service]"
		case inService:
			if k, v, ok := strings.Cut(line, "="); ok {
				out = append(out, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
			}
		}
	}
	return out
}

// splitUnitWords splits an Environment= value into its assignments,
// honouring double quotes: `A=1 "B=two words"`.
func splitUnitWords(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
