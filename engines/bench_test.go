package engines

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mirrorctl/mirrorctl/spec"
)

// BenchmarkRenderAll renders a 50-registry spec for every engine on a host
// that has each engine's files. Target (issue 2): under 5 ms.
func BenchmarkRenderAll(b *testing.B) {
	var y strings.Builder
	y.WriteString("mirrors:\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&y, "  registry%d.example.com:\n    endpoint:\n      - https://mirror%d.example.internal:8443\n      - https://nexus.example.internal/repository/group%d/v2\n", i, i%5, i)
	}
	y.WriteString("configs:\n")
	for i := 0; i < 5; i++ {
		fmt.Fprintf(&y, "  mirror%d.example.internal:8443:\n    auth:\n      username: u%d\n      password: p%d-secret\n", i, i, i)
	}
	y.WriteString("engines:\n  docker:\n    auth_users: [root]\n")
	s, err := spec.Parse("bench.yaml", []byte(y.String()), spec.Options{Engines: Sections()})
	if err != nil {
		b.Fatal(err)
	}
	fsys := fstest.MapFS{
		"etc/containerd/config.toml": {Data: []byte("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n")},
		"etc/docker/daemon.json":     {Data: []byte("{\"log-driver\": \"journald\"}\n")},
		"etc/passwd":                 {Data: []byte("root:x:0:0:root:/root:/bin/bash\n")},
		"etc/crictl.yaml":            {Data: []byte("timeout: 10\n")},
	}
	h := Host{FS: fsys}
	all := All()
	dets := make([]Detection, len(all))
	for i, e := range all {
		dets[i] = Detection{Engine: e.Name(), Found: true, Managed: true, Version: map[string]string{"containerd": "1.6.20", "docker": "20.10.24", "crictl": "1.37.0"}[e.Name()]}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, e := range all {
			if _, err := e.Render(s, h, dets[j]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
