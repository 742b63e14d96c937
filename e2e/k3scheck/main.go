// Command k3scheck reads a k3s/RKE2 registries.yaml the way k3s does, with
// github.com/rancher/wharfie/pkg/registries (the loader k3s and RKE2 use),
// and compares what k3s would see with an expected registries file.
//
// It is part of mirrorctl's real-engine e2e (e2e/run.sh): k3s itself cannot
// run on the test machines, so this is the closest check that the file
// mirrorctl writes means to k3s what the spec says.
//
//	k3scheck -file /etc/rancher/k3s/registries.yaml -want want.json
//
// Checks, in order: the file exists (wharfie silently returns an empty
// config for a missing file); it parses with GetPrivateRegistries; it holds
// no key that k3s would silently ignore (a strict decode into the same
// types); the parsed mirrors and configs equal the parsed -want file (JSON
// is YAML, so the harness can build it with jq). Secrets are never printed:
// they show as their length and a short hash. Exit 0 when all hold, 1 when
// one fails, 2 on bad usage.
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"

	"github.com/rancher/wharfie/pkg/registries"
	"gopkg.in/yaml.v2"
)

func main() {
	file := flag.String("file", "/etc/rancher/k3s/registries.yaml", "registries.yaml to check")
	want := flag.String("want", "", "expected registries file (YAML or JSON)")
	flag.Parse()
	if *want == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: k3scheck -file registries.yaml -want want.json")
		os.Exit(2)
	}
	if err := check(*file, *want); err != nil {
		fmt.Fprintln(os.Stderr, "k3scheck:", err)
		os.Exit(1)
	}
	fmt.Printf("k3scheck: %s parses with wharfie and matches %s\n", *file, *want)
}

func check(file, wantFile string) error {
	if _, err := os.Stat(file); err != nil {
		return err
	}
	got, err := load(file)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	// k3s decodes leniently (yaml.Unmarshal): a misspelt or unsupported key
	// is dropped without a word. Decode strictly to catch what k3s ignores.
	if err := yaml.UnmarshalStrict(data, &registries.Registry{}); err != nil {
		return fmt.Errorf("%s has keys k3s ignores: %w", file, err)
	}
	want, err := load(wantFile)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("%s differs from %s\n got: %s\nwant: %s", file, wantFile, show(got), show(want))
	}
	return nil
}

// load parses path with the k3s loader and normalises empty maps to nil.
func load(path string) (*registries.Registry, error) {
	r, err := registries.GetPrivateRegistries(path)
	if err != nil {
		return nil, fmt.Errorf("wharfie GetPrivateRegistries(%s): %w", path, err)
	}
	reg := r.Registry
	if len(reg.Mirrors) == 0 {
		reg.Mirrors = nil
	}
	for k, m := range reg.Mirrors {
		if len(m.Rewrites) == 0 {
			m.Rewrites = nil
		}
		reg.Mirrors[k] = m
	}
	if len(reg.Configs) == 0 {
		reg.Configs = nil
	}
	if len(reg.Auths) == 0 {
		reg.Auths = nil
	}
	return reg, nil
}

// show renders r as JSON with every secret replaced by its length and hash.
func show(r *registries.Registry) string {
	red := func(s string) string {
		if s == "" {
			return ""
		}
		h := sha256.Sum256([]byte(s))
		return fmt.Sprintf("<secret %d bytes sha256:%x>", len(s), h[:6])
	}
	c := registries.Registry{Mirrors: r.Mirrors, Configs: map[string]registries.RegistryConfig{}}
	for k, v := range r.Configs {
		if v.Auth != nil {
			a := *v.Auth
			a.Password, a.Auth, a.IdentityToken = red(a.Password), red(a.Auth), red(a.IdentityToken)
			v.Auth = &a
		}
		c.Configs[k] = v
	}
	b, _ := json.Marshal(c)
	return string(b)
}
