package health

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeDockerd answers /_ping and /info (with the registry settings given)
// on a unix socket in dir, served by this test process.
func fakeDockerd(t *testing.T, dir string, mirrors, cidrs []string, insecure ...string) {
	t.Helper()
	index := map[string]any{"docker.io": map[string]any{"Name": "docker.io", "Secure": true}}
	for _, h := range insecure {
		index[h] = map[string]any{"Name": h, "Secure": false}
	}
	info, _ := json.Marshal(map[string]any{"RegistryConfig": map[string]any{
		"Mirrors": mirrors, "InsecureRegistryCIDRs": cidrs, "IndexConfigs": index}})
	l, err := net.Listen("unix", filepath.Join(dir, "docker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/_ping":
			w.Write([]byte("OK"))
		case "/info":
			w.Write(info)
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// dockerd is healthy after a reload when /info lists exactly the mirrors
// and the insecure registries daemon.json now sets.
func TestDockerProbeComparesMirrorsAndInsecure(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "docker.sock")
	fakeDockerd(t, dir, []string{"https://m1.example/", "http://10.0.0.9:5000/"}, []string{"127.0.0.0/8", "10.1.0.0/16"}, "10.0.0.9:5000", "lab.example:5000")
	cases := []struct {
		name string
		want DockerProbe
		ok   bool
	}{
		{"same", DockerProbe{Mirrors: []string{"https://m1.example", "http://10.0.0.9:5000"}, Insecure: []string{"lab.example:5000", "10.0.0.9:5000", "10.1.0.0/16"}}, true},
		{"insecure not set by the file: not checked", DockerProbe{Mirrors: []string{"https://m1.example", "http://10.0.0.9:5000"}}, true},
		{"mirrors in another order", DockerProbe{Mirrors: []string{"http://10.0.0.9:5000", "https://m1.example"}}, false},
		{"an insecure registry not reloaded yet", DockerProbe{Mirrors: []string{"https://m1.example", "http://10.0.0.9:5000"}, Insecure: []string{"10.0.0.9:5000", "lab.example:5000", "new.example:5000"}}, false},
		{"an insecure registry removed but still applied", DockerProbe{Mirrors: []string{"https://m1.example", "http://10.0.0.9:5000"}, Insecure: []string{"10.0.0.9:5000"}}, false},
		{"an insecure CIDR missing", DockerProbe{Mirrors: []string{"https://m1.example", "http://10.0.0.9:5000"}, Insecure: []string{"10.0.0.9:5000", "lab.example:5000", "10.2.0.0/16"}}, false},
		{"none set, some applied", DockerProbe{Mirrors: []string{"https://m1.example", "http://10.0.0.9:5000"}, Insecure: []string{}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := dockerRunsWith(ctx, sock, c.want)
			if (err == nil) != c.ok {
				t.Errorf("dockerRunsWith: %v, want ok %v", err, c.ok)
			}
		})
	}
}

// An owed activation is applied when the daemons were restarted since, or,
// for dockerd, when /info already shows what a reload applies (a reload
// done by hand); a daemon running from before with other settings owes it.
func TestProbeApplied(t *testing.T) {
	dir := t.TempDir()
	resolve := func(p string) (string, error) { return filepath.Join(dir, p), nil }
	ctx := context.Background()
	fakeDockerd(t, dir, []string{"https://m1.example/"}, []string{"127.0.0.0/8"}, "lab.example:5000")
	since := time.Now() // this process, the listener, started before

	reloaded := Probe{Docker: &DockerProbe{Socket: "docker.sock", Mirrors: []string{"https://m1.example"}, Insecure: []string{"lab.example:5000"}}}
	if !reloaded.Applied(ctx, resolve, since) {
		t.Error("a dockerd listing the files' mirrors and insecure registries owes the reload")
	}
	stale := Probe{Docker: &DockerProbe{Socket: "docker.sock", Mirrors: []string{"https://m2.example"}}}
	if stale.Applied(ctx, resolve, since) {
		t.Error("a dockerd listing other mirrors, started before, is judged to run with the files")
	}
	// containerd shows no such proof: only a restart since counts.
	withContainerd := Probe{Docker: reloaded.Docker, Containerd: &ContainerdProbe{Socket: "docker.sock"}}
	if withContainerd.Applied(ctx, resolve, since) {
		t.Error("a containerd started before the files is judged to run with them")
	}
	if (Probe{Docker: &DockerProbe{Socket: "none.sock"}}).Applied(ctx, resolve, since) {
		t.Error("a dockerd that does not answer is judged to run with the files")
	}
}

// Detection asks dockerd on every sync and health checks on every retry,
// each with a client of its own: no question may leave its connection
// open, in mirrorctl or in the daemon.
func TestDaemonQuestionsLeaveNoConnection(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "docker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	open := 0
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"Driver":"overlay2"}`)) }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			switch s {
			case http.StateNew:
				open++
			case http.StateClosed, http.StateHijacked:
				open--
			}
		},
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	for range 5 {
		if _, err := DockerInfoOnce(t.Context(), filepath.Join(dir, "docker.sock")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := open
		mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after 5 questions", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
