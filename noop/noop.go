// Package noop lets a sync that would change nothing say so without
// planning. After a sync that wrote nothing, activated nothing, owes
// nothing and left no conflict, it keeps a record of what that run read:
// every directory, link and file its hostfs roots looked at, with their
// attributes (hostfs.Log), the environment variables the spec named, and
// the invocation (mirrorctl's binary, spec path and flags);
// and of what the run said (its warnings, its detection line). The next
// sync checks the record before it reads anything else (before the lock:
// the record is replaced whole, and a sync holding the lock changes what
// the record lists before it is done). When every entry is as recorded, the spec and the node are as
// that run found them, so planning again would find nothing to do: the
// sync says again what that run said and stops.
//
// The record vouches only for what had not changed for a while before the
// run began (settle): a later change could otherwise leave the same
// change time. It is kept where no plan reads (a directory of its own in
// the state directory), so writing it changes nothing it lists. Anything
// it cannot read or trust is ignored: the sync plans as it would without.
package noop

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mirrorctl/mirrorctl/engines"
	"github.com/mirrorctl/mirrorctl/hostfs"
	"github.com/mirrorctl/mirrorctl/state"
)

const (
	// Dir is where the record is kept, as a host path under --root.
	Dir  = state.HostDir + "/noop"
	Path = Dir + "/record"
	// maxRecord bounds the record read back: a 10,000-registry node's is
	// a few MiB.
	maxRecord = 64 << 20
	// settle is how long before the run began everything it read must
	// have last changed: more than the coarsest timestamps of a Linux
	// filesystem mirrorctl meets (ext4 with 128-byte inodes: 1 s) plus
	// the kernel's clock tick, so that no later change can leave the
	// change time recorded.
	settle = 2 * time.Second
	// magic is the record's first line; a record of another format is
	// ignored.
	magic = "mirrorctl no-op record 1"
)

// Config is what a Keeper needs.
type Config struct {
	// Store is the root the record is kept under (--root).
	Store *hostfs.Root
	// Roots are every root the sync reads through: --root and mirrorctl's
	// own filesystem (its spec and the files the spec names).
	Roots []*hostfs.Root
	// Key identifies the invocation: a record kept by another binary,
	// spec path or command line is not used.
	Key string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// A Keeper checks the record before a sync and keeps it after one. One
// Keeper serves one sync.
type Keeper struct {
	cfg   Config
	log   *hostfs.Log
	start time.Time
	// seen and unseen are what the log held when the plan was made, or
	// why it cannot vouch for it (Planned).
	seen   map[string][]hostfs.Observed
	unseen string

	mu  sync.Mutex
	env map[string]string // name -> digest of the value as looked up
}

// New returns a Keeper for one sync.
func New(cfg Config) *Keeper {
	return &Keeper{cfg: cfg, env: map[string]string{}}
}

// Replay is what a recorded no-op said, to be said again.
type Replay struct {
	// Kept is when the record was kept.
	Kept     time.Time         `json:"kept"`
	Warnings []engines.Warning `json:"warnings"`
	Detected string            `json:"detected"`
}

// header is the record's second line.
type header struct {
	Key string            `json:"key"`
	Env map[string]string `json:"env"`
	Replay
}

// Fresh returns what the recorded no-op said when nothing it read has
// changed since; otherwise nil and why not. Call it before Start.
func (k *Keeper) Fresh() (*Replay, string) {
	data, err := k.cfg.Store.ReadFile(Path, maxRecord)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "no record"
	}
	if err != nil {
		return nil, err.Error()
	}
	h, seen, err := decode(data)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", Path, err)
	}
	if h.Key != k.cfg.Key {
		return nil, "kept by another binary, spec path or command line"
	}
	for name, want := range h.Env {
		if envDigest(os.LookupEnv(name)) != want {
			return nil, "environment variable " + name + " changed"
		}
	}
	for dir, entries := range seen {
		r := k.root(dir)
		if r == nil {
			return nil, "kept for another root (" + dir + ")"
		}
		if p, ok := r.Unchanged(entries); !ok {
			return nil, path.Join(dir, p) + " changed"
		}
	}
	return &h.Replay, ""
}

func (k *Keeper) root(dir string) *hostfs.Root {
	for _, r := range k.cfg.Roots {
		if r.Dir() == dir {
			return r
		}
	}
	return nil
}

// Start begins noting what the roots look at; the sync reads nothing
// before it.
func (k *Keeper) Start() error {
	k.start = k.now()
	k.log = hostfs.NewLog()
	for _, r := range k.cfg.Roots {
		if err := r.LogTo(k.log); err != nil {
			return err
		}
	}
	return nil
}

// LookupEnv looks up an environment variable for the spec and notes what
// it found (as a digest: a password_env's value is a secret).
func (k *Keeper) LookupEnv(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.env[name] = envDigest(v, ok)
	return v, ok
}

// Planned ends the log: the plan is made, and what the sync reads from
// here on (its own writes) is no input of it.
func (k *Keeper) Planned() {
	if k.log == nil {
		k.unseen = "the no-op record was not started"
		return
	}
	seen, err := k.log.Stop()
	if err != nil {
		k.unseen = err.Error()
		return
	}
	k.seen = seen
}

// Keep writes the record of this run, whose warnings and detection line
// are given (with secrets already masked). Call it holding mirrorctl's
// lock, only after a sync that changed nothing and owes nothing. It
// returns why it kept no record when it kept none.
func (k *Keeper) Keep(warnings []engines.Warning, detected string) (string, error) {
	if k.seen == nil {
		return cmp.Or(k.unseen, "the plan was not made"), nil
	}
	limit := k.start.Add(-settle).UnixNano()
	for dir, entries := range k.seen {
		for _, o := range entries {
			if o.ChangedSince(limit) {
				return fmt.Sprintf("%s changed less than %s before this run", path.Join(dir, o.Path), settle), nil
			}
		}
	}
	if _, err := k.cfg.Store.Lstat(Dir); errors.Is(err, fs.ErrNotExist) {
		// Creating the directory changes the state directory, which this
		// run read: a record kept now would be stale at once.
		if err := k.cfg.Store.MkdirAll(Dir, 0o700); err != nil {
			return "", fmt.Errorf("keeping the no-op record: %w", err)
		}
		return "created " + Dir + "; the next sync that changes nothing keeps the record", nil
	}
	k.mu.Lock()
	env := maps.Clone(k.env)
	k.mu.Unlock()
	h := header{Key: k.cfg.Key, Env: env, Replay: Replay{Kept: k.start.UTC(), Warnings: warnings, Detected: detected}}
	data, err := encode(h, k.seen)
	if err != nil {
		return "", err
	}
	if fi, err := k.cfg.Store.Lstat(Path); err == nil && !fi.Mode().IsRegular() {
		// Not a record (root alone can write here): it goes, as a record
		// that cannot be read would.
		if err := k.cfg.Store.Remove(Path); err != nil {
			return "", fmt.Errorf("keeping the no-op record: %w", err)
		}
	}
	if err := k.cfg.Store.WriteFile(Path, data, hostfs.WriteOptions{Mode: 0o600}); err != nil {
		return "", fmt.Errorf("keeping the no-op record: %w", err)
	}
	return "", nil
}

func (k *Keeper) now() time.Time {
	if k.cfg.Now != nil {
		return k.cfg.Now()
	}
	return time.Now()
}

// envDigest stands for a variable's value in the record.
func envDigest(v string, ok bool) string {
	if !ok {
		return "unset"
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// The record is text: the magic line, the header as one line of JSON,
// then for each root a line "root <quoted dir>" followed by one line per
// entry "<w|i> <dev> <ino> <mode> <uid> <gid> <size> <mtime> <ctime>
// <quoted path>" (w: every attribute counts, i: its identity, type, owner
// and mode; hostfs.Observed.Whole), and last "sum <sha256 of everything before>": a record cut
// short is refused, never read as one with fewer entries.
func encode(h header, seen map[string][]hostfs.Observed) ([]byte, error) {
	head, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(magic + "\n")
	b.Write(head)
	b.WriteByte('\n')
	for _, dir := range slices.Sorted(maps.Keys(seen)) {
		b.WriteString("root " + strconv.Quote(dir) + "\n")
		entries := slices.SortedFunc(slices.Values(seen[dir]), func(x, y hostfs.Observed) int { return strings.Compare(x.Path, y.Path) })
		for _, o := range entries {
			a := o.Attrs
			kind := "i"
			if o.Whole {
				kind = "w"
			}
			fmt.Fprintf(&b, "%s %d %d %d %d %d %d %d %d %s\n", kind, a.Dev, a.Ino, a.Mode, a.Uid, a.Gid, a.Size, a.Mtime, a.Ctime, strconv.Quote(o.Path))
		}
	}
	sum := sha256.Sum256(b.Bytes())
	b.WriteString("sum " + hex.EncodeToString(sum[:]) + "\n")
	return b.Bytes(), nil
}

func decode(data []byte) (header, map[string][]hostfs.Observed, error) {
	var h header
	body, last, ok := cutLastLine(data)
	sum := sha256.Sum256(body)
	if !ok || last != "sum "+hex.EncodeToString(sum[:]) {
		return h, nil, errors.New("incomplete or damaged")
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, maxRecord)
	if !sc.Scan() || sc.Text() != magic {
		return h, nil, errors.New("not a record of this mirrorctl")
	}
	if !sc.Scan() {
		return h, nil, errors.New("no header")
	}
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	seen := map[string][]hostfs.Observed{}
	dir := ""
	for sc.Scan() {
		line := sc.Text()
		if q, ok := strings.CutPrefix(line, "root "); ok {
			d, err := strconv.Unquote(q)
			if err != nil || !path.IsAbs(d) || path.Clean(d) != d {
				return h, nil, fmt.Errorf("root line %q", line)
			}
			dir = d
			continue
		}
		o, err := parseEntry(line)
		if err != nil || dir == "" {
			return h, nil, fmt.Errorf("entry %q: %v", line, err)
		}
		seen[dir] = append(seen[dir], o)
	}
	return h, seen, sc.Err()
}

func parseEntry(line string) (hostfs.Observed, error) {
	var o hostfs.Observed
	var nums [8]uint64
	kind, rest, _ := strings.Cut(line, " ")
	switch kind {
	case "w":
		o.Whole = true
	case "i":
	default:
		return o, errors.New("neither w nor i")
	}
	for i := range nums {
		field, tail, ok := strings.Cut(rest, " ")
		if !ok {
			return o, errors.New("too few fields")
		}
		var err error
		if i < 2 { // dev and ino are unsigned; the rest fit int64
			nums[i], err = strconv.ParseUint(field, 10, 64)
		} else {
			var n int64
			n, err = strconv.ParseInt(field, 10, 64)
			nums[i] = uint64(n)
		}
		if err != nil {
			return o, err
		}
		rest = tail
	}
	p, err := strconv.Unquote(rest)
	// A host path as hostfs reaches it: absolute, clean, no "..".
	if err != nil || !path.IsAbs(p) || path.Clean(p) != p {
		return o, fmt.Errorf("path %q", rest)
	}
	o.Path = p
	o.Attrs = hostfs.Attrs{Dev: nums[0], Ino: nums[1], Mode: uint32(nums[2]), Uid: uint32(nums[3]),
		Gid: uint32(nums[4]), Size: int64(nums[5]), Mtime: int64(nums[6]), Ctime: int64(nums[7])}
	return o, nil
}

// cutLastLine splits data into everything before its last line and that
// line (without its newline); ok is false unless data ends in a newline.
func cutLastLine(data []byte) (body []byte, last string, ok bool) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, "", false
	}
	i := bytes.LastIndexByte(data[:len(data)-1], '\n')
	return data[:i+1], string(data[i+1 : len(data)-1]), true
}
