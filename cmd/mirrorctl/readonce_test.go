package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// A spec naming one password file for many mirrors reads it once per load.
func TestReadOnceReadsEachFileOncePerLoad(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	calls := map[string]int{}
	read := readOnce(func(name string) ([]byte, error) {
		abs, _ := filepath.Abs(name)
		calls[abs]++
		if filepath.Base(abs) == "missing" {
			return nil, fs.ErrNotExist
		}
		return []byte("secret\n"), nil
	})
	for _, name := range []string{"secrets/pw", filepath.Join(dir, "secrets/pw"), "./secrets/../secrets/pw", "missing", "missing"} {
		b, err := read(name)
		if filepath.Base(name) == "missing" {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("read(%s): %v", name, err)
			}
			continue
		}
		if err != nil || string(b) != "secret\n" {
			t.Fatalf("read(%s) = %q, %v", name, b, err)
		}
		b[0] = 'X' // a caller's changes are its own
	}
	if n := calls[filepath.Join(dir, "secrets/pw")]; n != 1 {
		t.Errorf("secrets/pw read %d times, want once", n)
	}
	if n := calls[filepath.Join(dir, "missing")]; n != 1 {
		t.Errorf("missing read %d times, want once", n)
	}
	again := readOnce(func(string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, "nothing")) })
	if _, err := again("secrets/pw"); err == nil {
		t.Error("a second load answered from the first one's reads")
	}
}
