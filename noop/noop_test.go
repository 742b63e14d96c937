package noop

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
)

// A record reads back as written, whatever bytes its paths hold, and a
// record cut anywhere, or changed in any byte, is refused.
func TestRecordRoundTripsAndRefusesDamage(t *testing.T) {
	h := header{Key: "k", Env: map[string]string{"A": "unset"},
		Replay: Replay{Kept: time.Unix(1700000000, 5).UTC(), Warnings: []engines.Warning{{Engine: "docker", Message: "m"}}, Detected: "containerd=yes"}}
	seen := map[string][]hostfs.Observed{
		"/":     {{Path: "/etc/a b\n\"c\"", Whole: true, Attrs: hostfs.Attrs{Dev: 1 << 63, Ino: 2, Mode: 0o100644, Size: 3, Mtime: -4, Ctime: 5}}},
		"/host": {{Path: "/", Attrs: hostfs.Attrs{Dev: 7, Ino: 8, Mode: 0o40755}}},
	}
	data, err := encode(h, seen)
	if err != nil {
		t.Fatal(err)
	}
	gotH, gotSeen, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotH, h) || !reflect.DeepEqual(gotSeen, seen) {
		t.Errorf("read back\n%+v\n%+v\nwant\n%+v\n%+v", gotH, gotSeen, h, seen)
	}
	for n := range len(data) {
		if _, _, err := decode(data[:n]); err == nil {
			t.Fatalf("a record cut to %d of %d bytes was read", n, len(data))
		}
		changed := bytes.Clone(data)
		changed[n] ^= 0x20
		if _, _, err := decode(changed); err == nil {
			t.Fatalf("a record with byte %d changed was read", n)
		}
	}
}
