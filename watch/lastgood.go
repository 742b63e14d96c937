package watch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/state"
)

// LastGood keeps the newest central config that was applied, so that a node
// booting while its source is unreachable still converges to it. It holds
// the central part only (with its signature, checked again on use); the
// node's drop-ins and secrets stay where they are.
//
// Layout, under <root>/var/lib/mirrorctl/last-good/: config.yaml,
// config.yaml.sig (when signed) and meta.json, written in that order, each
// atomically; meta.json holds the others' hashes, so a set torn by a crash
// is detected and not used.
type LastGood struct {
	root *hostfs.Root
	Dir  string // a host path
}

// OpenLastGood returns the LastGood under root.
func OpenLastGood(root *hostfs.Root) *LastGood {
	return &LastGood{root: root, Dir: path.Join(state.HostDir, "last-good")}
}

// maxLastGood bounds each file read back (a central config is bounded by
// the source's --max-size).
const maxLastGood = 64 << 20

// Saved is one last good config.
type Saved struct {
	// Name is where it came from (a path or URL), for positions and logs.
	Name string `json:"source"`
	// Generation counts the distinct configs this node has applied.
	Generation int `json:"generation"`
	// Serial is the highest serial: this node has applied, this config's
	// or an earlier one's: configs below it are refused (serial.go).
	Serial    int64     `json:"serial,omitempty"`
	AppliedAt time.Time `json:"applied_at"`
	SHA256    string    `json:"sha256"`
	SigSHA256 string    `json:"sig_sha256,omitempty"`
	Data      []byte    `json:"-"`
	Sig       []byte    `json:"-"`
}

const (
	lastGoodConfig = "config.yaml"
	lastGoodSig    = "config.yaml.sig"
	lastGoodMeta   = "meta.json"
)

// Load returns the saved config, or nil and no error when there is none.
func (lg *LastGood) Load() (*Saved, error) {
	meta, err := lg.root.ReadFile(path.Join(lg.Dir, lastGoodMeta), maxLastGood)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the last good config: %w", err)
	}
	var s Saved
	if err := json.Unmarshal(meta, &s); err != nil {
		return nil, fmt.Errorf("reading the last good config: %s: %w", lastGoodMeta, err)
	}
	if s.Data, err = lg.root.ReadFile(path.Join(lg.Dir, lastGoodConfig), maxLastGood); err != nil {
		return nil, fmt.Errorf("reading the last good config: %w", err)
	}
	if hexSum(s.Data) != s.SHA256 {
		return nil, fmt.Errorf("the last good config in %s does not match its %s (interrupted write?)", lg.Dir, lastGoodMeta)
	}
	if s.SigSHA256 != "" {
		if s.Sig, err = lg.root.ReadFile(path.Join(lg.Dir, lastGoodSig), maxLastGood); err != nil {
			return nil, fmt.Errorf("reading the last good config: %w", err)
		}
		if hexSum(s.Sig) != s.SigSHA256 {
			return nil, fmt.Errorf("the last good signature in %s does not match its %s", lg.Dir, lastGoodMeta)
		}
	}
	return &s, nil
}

// HighestSerial is the Serial of meta.json alone: it still holds when the
// config beside it is torn or no longer verifies, so that losing those
// never reopens the door to an old config.
func (lg *LastGood) HighestSerial() (int64, error) {
	meta, err := lg.root.ReadFile(path.Join(lg.Dir, lastGoodMeta), maxLastGood)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the last good serial: %w", err)
	}
	var s Saved
	if err := json.Unmarshal(meta, &s); err != nil {
		return 0, fmt.Errorf("reading the last good serial: %s: %w", lastGoodMeta, err)
	}
	return s.Serial, nil
}

// Save replaces the saved config with s. Files are 0600 in a 0700
// directory: a central config may hold credentials.
func (lg *LastGood) Save(s *Saved) error {
	if err := lg.root.MkdirAll(path.Dir(lg.Dir), 0o700); err != nil {
		return fmt.Errorf("saving the last good config: %w", err)
	}
	if err := lg.root.MkdirAll(lg.Dir, 0o700); err != nil {
		return fmt.Errorf("saving the last good config: %w", err)
	}
	s.SHA256, s.SigSHA256 = hexSum(s.Data), ""
	if len(s.Sig) > 0 {
		s.SigSHA256 = hexSum(s.Sig)
	}
	meta, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	write := func(name string, data []byte) error {
		return lg.root.WriteFile(path.Join(lg.Dir, name), data, hostfs.WriteOptions{Mode: 0o600})
	}
	if err := write(lastGoodConfig, s.Data); err != nil {
		return fmt.Errorf("saving the last good config: %w", err)
	}
	if len(s.Sig) > 0 {
		if err := write(lastGoodSig, s.Sig); err != nil {
			return fmt.Errorf("saving the last good config: %w", err)
		}
	} else if err := lg.root.Remove(path.Join(lg.Dir, lastGoodSig)); err != nil {
		return fmt.Errorf("saving the last good config: %w", err)
	}
	if err := write(lastGoodMeta, append(meta, '\n')); err != nil {
		return fmt.Errorf("saving the last good config: %w", err)
	}
	return nil
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
