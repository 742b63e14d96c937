package engines

import (
	"encoding/json"
	"maps"
	"strings"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// mergeAuths sets our entries in the "auths" object of one user's JSON
// credentials file (Docker's config.json, containers' auth.json), removes
// the ones mirrorctl wrote earlier that the spec no longer has, and keeps
// every other entry and key. The original bytes come back when no entry
// changes; a file mirrorctl created goes once nothing else is in it; none
// is created when there is nothing to put in it. ignoredBy says, from the
// file's other keys, why a program would not read an entry (a credential
// helper), or "".
func mergeAuths(h Host, u passwdEntry, file string, entries map[string]map[string]string, keys []string, w *warnList,
	ignoredBy func(obj *jsonObject, key string) string) (*render.File, error) {
	owned := ownedEntries(h, file)
	old, exists, err := readOptional(h.FS, file)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 && (len(owned) == 0 || !exists) {
		return nil, nil // nothing of mirrorctl's to put there or to take out
	}
	obj, err := parseJSONObject(file, old)
	if err != nil {
		return nil, err
	}
	auths := &jsonObject{vals: map[string]json.RawMessage{}}
	if raw, ok := obj.get(keyAuths); ok && string(raw) != "null" {
		if auths, err = parseJSONObject(file+` "auths"`, raw); err != nil {
			return nil, err
		}
	}
	changed := false
	var mine []string
	for _, key := range keys {
		if why := ignoredBy(obj, key); why != "" {
			w.add(spec.Pos{}, "%s: %s and ignores the auths entry mirrorctl writes", file, why)
		}
		mine = append(mine, keyAuths+"="+key)
		var cur map[string]string
		if raw, ok := auths.get(key); ok && json.Unmarshal(raw, &cur) == nil && maps.Equal(cur, entries[key]) {
			continue
		}
		auths.set(key, entries[key])
		changed = true
	}
	for entry := range owned {
		key, _ := strings.CutPrefix(entry, keyAuths+"=")
		if _, still := entries[key]; !still {
			if _, ok := auths.get(key); ok {
				auths.del(key)
				changed = true
			}
		}
	}
	f := &render.File{Path: file, Data: old, Mode: 0o600, Secret: true, Merged: true, Keys: mine,
		Owner: &render.Owner{UID: u.uid, GID: u.gid}}
	if !changed && exists {
		return f, nil
	}
	if len(auths.keys) == 0 {
		obj.del(keyAuths)
	} else {
		obj.setRaw(keyAuths, auths.marshal())
	}
	if len(obj.keys) == 0 && h.Owned[file].Created {
		f.Remove, f.Data = true, nil
		return f, nil
	}
	f.Data = obj.marshal()
	return f, nil
}

// forEachUser looks the users up (setting names them, for errors) and
// collects the file merge renders for each, if any.
func forEachUser(h Host, users []string, setting string, merge func(passwdEntry) (*render.File, error)) ([]render.File, error) {
	accounts, err := lookupUsers(h, users, setting)
	if err != nil {
		return nil, err
	}
	var out []render.File
	for _, acct := range accounts {
		f, err := merge(acct)
		if err != nil {
			return nil, err
		}
		if f != nil {
			out = append(out, *f)
		}
	}
	return out, nil
}

// jsonStringMap reads a key of obj holding an object of strings (nil when
// absent or not one).
func jsonStringMap(obj *jsonObject, key string) map[string]string {
	var m map[string]string
	if raw, ok := obj.get(key); ok {
		_ = json.Unmarshal(raw, &m)
	}
	return m
}

// jsonString reads a key of obj holding a string ("" when absent or not one).
func jsonString(obj *jsonObject, key string) string {
	var s string
	if raw, ok := obj.get(key); ok {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}
