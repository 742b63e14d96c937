package engines

import (
	"reflect"
	"testing"
	"testing/fstest"

	"github.com/pelletier/go-toml/v2"
)

// The file as read (orig) is a copy of what the edits change (doc), as a
// second decoding gave: no table or array is shared.
func TestReadContainerdConfigOrigIsACopy(t *testing.T) {
	const conf = `version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
[plugins."io.containerd.grpc.v1.cri".registry.configs."a.example".auth]
  auth = "eA=="
[[proxy_plugins.list]]
  name = "x"
[debug]
  levels = ["info", "debug"]
`
	c, err := readContainerdConfig(fstest.MapFS{"etc/containerd/config.toml": {Data: []byte(conf)}}, "etc/containerd/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	var again map[string]any
	if err := toml.Unmarshal([]byte(conf), &again); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.orig, again) {
		t.Fatalf("orig %v, want the decoded file %v", c.orig, again)
	}
	table(c.doc, "plugins", "io.containerd.grpc.v1.cri", "registry")["config_path"] = "/elsewhere"
	delete(table(c.doc, "plugins", "io.containerd.grpc.v1.cri", "registry", "configs"), "a.example")
	c.doc["debug"].(map[string]any)["levels"].([]any)[0] = "trace"
	c.doc["proxy_plugins"].(map[string]any)["list"].([]any)[0].(map[string]any)["name"] = "y"
	if !reflect.DeepEqual(c.orig, again) {
		t.Errorf("editing doc changed orig: %v", c.orig)
	}
}
