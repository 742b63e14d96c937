package engines

import (
	"strings"
	"testing"
)

// configPathNote names what setting config_path to the single certs_dir
// changes: every list (explicit, or 2.2+'s default) is told with the
// directories containerd no longer reads.
func TestConfigPathNote(t *testing.T) {
	const dir = "/etc/containerd/certs.d"
	for _, c := range []struct {
		name, cur string
		set       bool
		version   string
		want      []string // substrings; none means no note
	}{
		{name: "already_single_dir", cur: dir, set: true, version: "2.3.3"},
		{name: "absent_2_1_default_empty", version: "2.1.5"},
		{name: "absent_unknown_version", version: ""},
		{name: "absent_2_2", version: "2.2.0", want: []string{"is not set, so containerd 2.2.0 uses its default list", "under /etc/docker/certs.d are no longer read"}},
		{name: "absent_2_4", version: "2.4.2", want: []string{"is not set", `set it to "/etc/containerd/certs.d"`}},
		{name: "empty_2_3", cur: "", set: true, version: "2.3.0", want: []string{"is empty, so containerd 2.3.0 uses its default list"}},
		{name: "empty_2_2_stays_empty", cur: "", set: true, version: "2.2.1"},
		{name: "list_1_7", cur: dir + ":/etc/docker/certs.d", set: true, version: "1.7.27", want: []string{"is a list", "reads config_path as one directory"}},
		{name: "list_without_certs_dir", cur: "/a:/b/", set: true, version: "2.1.0", want: []string{"under /a and /b are no longer read"}},
		{name: "list_trailing_colon", cur: dir + ":", set: true, version: "2.2.0", want: []string{`mirrorctl set it to "/etc/containerd/certs.d"`}},
		{name: "other_single_dir", cur: "/srv/certs.d", set: true, version: "2.2.0", want: []string{`"/srv/certs.d" replaced by`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := configPathNote(c.cur, c.set, dir, parseRelease(c.version))
			if len(c.want) == 0 && got != "" {
				t.Errorf("note %q, want none", got)
			}
			if len(c.want) > 0 && got == "" {
				t.Errorf("no note, want one with %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("note %q lacks %q", got, w)
				}
			}
			if strings.Contains(got, "dockerd's") != strings.Contains(got, "under /etc/docker/certs.d") {
				t.Errorf("note %q: Docker is named exactly when /etc/docker/certs.d is dropped", got)
			}
		})
	}
}
