// Package kubernetes holds the DaemonSet manifests; this test decodes each
// of them strictly into the Kubernetes API types, so a misspelt or misplaced
// field fails here rather than being dropped by the API server. It lives in
// its own module (packaging/go.mod) to keep k8s.io/api out of mirrorctl's.
package kubernetes

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's Kustomization this directory uses;
// decoded strictly like the rest.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// documents splits a multi-document YAML file.
func documents(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// decode decodes doc strictly (unknown or duplicate fields fail) into the
// API type its kind names, and returns it.
func decode(t *testing.T, file string, doc []byte) any {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		obj = &corev1.Namespace{}
	case "v1 ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	case "apps/v1 DaemonSet":
		obj = &appsv1.DaemonSet{}
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
		obj = &kustomization{}
	default:
		t.Fatalf("%s: unexpected %s %s", file, tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %s %s does not decode strictly: %v", file, tm.APIVersion, tm.Kind, err)
	}
	return obj
}

// all decodes every manifest in this directory.
func all(t *testing.T) map[string][]any {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string][]any{}
	for _, f := range files {
		for _, d := range documents(t, f) {
			out[f] = append(out[f], decode(t, f, d))
		}
	}
	return out
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := all(t)
	k := objs["kustomization.yaml"][0].(*kustomization)
	// every manifest is a resource of the kustomization, and every resource exists
	var files []string
	for f := range objs {
		if f != "kustomization.yaml" {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	res := slices.Clone(k.Resources)
	slices.Sort(res)
	if !slices.Equal(files, res) {
		t.Errorf("kustomization resources %v, manifests %v", res, files)
	}
	for f, list := range objs {
		for _, o := range list {
			if m, ok := o.(metav1.Object); ok && m.GetNamespace() != "" && m.GetNamespace() != k.Namespace {
				t.Errorf("%s: %s is in namespace %s, the kustomization's is %s", f, m.GetName(), m.GetNamespace(), k.Namespace)
			}
		}
	}
}

func TestStrictDecodingCatchesMistakes(t *testing.T) {
	// the check itself: a misplaced field must fail
	bad := []byte("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      hostNetwrok: true\n")
	if err := yaml.UnmarshalStrict(bad, &appsv1.DaemonSet{}); err == nil || !strings.Contains(err.Error(), "hostNetwrok") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
}

func daemonSet(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	return all(t)["daemonset.yaml"][0].(*appsv1.DaemonSet)
}

func TestDaemonSet(t *testing.T) {
	ds := daemonSet(t)
	ps := ds.Spec.Template.Spec
	if len(ps.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(ps.Containers))
	}
	c := ps.Containers[0]
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"watch", "--root=/host", "--source=/config/config.yaml", "--config=/etc/mirrorctl/config.yaml",
		"--bus=unix:path=/host/run/dbus/system_bus_socket", "--metrics-addr=127.0.0.1:9477"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args lack %s: %s", want, args)
		}
	}
	if !slices.ContainsFunc(ps.Tolerations, func(t corev1.Toleration) bool {
		return t.Operator == corev1.TolerationOpExists && t.Key == "" && t.Effect == ""
	}) {
		t.Error("no toleration that tolerates every taint")
	}
	if ps.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", ps.PriorityClassName)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; mirrorctl never talks to the API server")
	}

	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no securityContext")
	case sc.Privileged == nil || *sc.Privileged:
		t.Error("privileged is not false")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("the root filesystem is writable")
	case sc.RunAsUser == nil || *sc.RunAsUser != 0:
		t.Error("runAsUser is not 0")
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("seccomp is not RuntimeDefault")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
		t.Error("capabilities: not drop ALL")
	}
	if sc.Capabilities != nil {
		add := slices.Clone(sc.Capabilities.Add)
		slices.Sort(add)
		if !slices.Equal(add, []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "FOWNER"}) {
			t.Errorf("added capabilities %v, want CHOWN DAC_OVERRIDE FOWNER", add)
		}
	}
	checkMemoryLimit(t, c)
	// Ready means "this node has its mirrors" (/readyz); alive is /healthz.
	for _, probe := range []struct {
		path string
		p    *corev1.Probe
	}{{"/readyz", c.ReadinessProbe}, {"/healthz", c.StartupProbe}, {"/healthz", c.LivenessProbe}} {
		path, p := probe.path, probe.p
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.IntValue() != 9477 || p.HTTPGet.Host != "127.0.0.1" {
			t.Errorf("probe is not GET 127.0.0.1:9477%s: %+v", path, p)
		}
	}
}

// checkMemoryLimit: the Go runtime is told a soft limit below the
// container's, with room for what it does not count (the binary's pages),
// so a sync of many registries is collected, not killed.
func checkMemoryLimit(t *testing.T, c corev1.Container) {
	t.Helper()
	limit, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		t.Fatal("no memory limit")
	}
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
	if i < 0 {
		t.Fatal("no GOMEMLIMIT: the runtime lets the heap grow to twice what is live and is killed at the limit")
	}
	soft, err := resource.ParseQuantity(strings.TrimSuffix(c.Env[i].Value, "B")) // Go's "100MiB" is Kubernetes' "100Mi"
	if err != nil {
		t.Fatalf("GOMEMLIMIT %q: %v", c.Env[i].Value, err)
	}
	if ratio := float64(soft.Value()) / float64(limit.Value()); ratio < 0.6 || ratio > 0.85 {
		t.Errorf("GOMEMLIMIT %s is %.0f%% of limits.memory %s, want 60-85%%", c.Env[i].Value, ratio*100, limit.String())
	}
}

// TestHostMounts pins what the pod sees of the host: writable only the
// engines' configuration directories and mirrorctl's state; everything else
// read only; never / or all of /etc.
func TestHostMounts(t *testing.T) {
	ps := daemonSet(t).Spec.Template.Spec
	hostPath := map[string]string{}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			hostPath[v.Name] = v.HostPath.Path
		}
	}
	writable := map[string]string{}
	readOnly := map[string]string{}
	mounts := map[string]string{}
	for _, m := range ps.Containers[0].VolumeMounts {
		mounts[m.MountPath] = m.Name
		hp, ok := hostPath[m.Name]
		if !ok {
			continue
		}
		if m.MountPath != "/host"+hp {
			t.Errorf("host %s is mounted at %s, not under /host at the same path", hp, m.MountPath)
		}
		if m.ReadOnly {
			readOnly[hp] = m.Name
		} else {
			writable[hp] = m.Name
		}
	}
	var w []string
	for p := range writable {
		w = append(w, p)
	}
	slices.Sort(w)
	if want := []string{"/etc/containerd", "/etc/containers", "/etc/crio", "/etc/docker", "/etc/rancher", "/var/lib/mirrorctl"}; !slices.Equal(w, want) {
		t.Errorf("writable host paths %v, want exactly %v", w, want)
	}
	for _, p := range []string{"/", "/etc", "/var", "/var/lib", "/root", "/home"} {
		if _, ok := hostPath[p]; ok {
			t.Errorf("the host's %s is mounted", p)
		}
	}
	for _, p := range []string{"/run", "/usr", "/etc/systemd/system", "/lib/systemd/system", "/etc/passwd"} {
		if _, ok := readOnly[p]; !ok {
			t.Errorf("host %s is not mounted read only", p)
		}
	}
	for path, name := range map[string]string{"/config": "config", "/etc/mirrorctl/secrets": "secrets", "/etc/mirrorctl/certs": "certs"} {
		if mounts[path] != name {
			t.Errorf("%s is not the %s volume", path, name)
		}
	}
}

// TestSpecReferencesResolve: every file the ConfigMap's spec names relative
// to --config's directory is a key of the Secret or ConfigMap mounted there.
func TestSpecReferencesResolve(t *testing.T) {
	objs := all(t)
	keys := map[string]bool{}
	var specText string
	for _, o := range append(objs["configmap.yaml"], objs["secret.yaml"]...) {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			for k, v := range o.Data {
				if o.Name == "mirrorctl-config" && k == "config.yaml" {
					specText = v
				}
				if o.Name == "mirrorctl-certs" {
					keys["certs/"+k] = true
				}
			}
		case *corev1.Secret:
			for k := range o.StringData {
				keys["secrets/"+k] = true
			}
			for k := range o.Data {
				keys["secrets/"+k] = true
			}
		}
	}
	if specText == "" {
		t.Fatal("no config.yaml in ConfigMap mirrorctl-config")
	}
	var refs int
	for _, l := range strings.Split(specText, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok || !strings.HasSuffix(k, "_file") {
			continue
		}
		refs++
		if v = strings.TrimSpace(v); !keys[v] {
			t.Errorf("the spec's %s: %s is not in the mounted Secret or ConfigMap (have %v)", k, v, keys)
		}
	}
	if refs == 0 {
		t.Error("the example spec names no secret or CA file")
	}
}
