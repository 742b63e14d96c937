package engines

import (
	"encoding/json"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/mirrorctl/mirrorctl/render"
	"github.com/mirrorctl/mirrorctl/spec"
)

// Docker's shared JSON files (daemon.json, users' config.json) hold entries
// of the user's beside mirrorctl's. state.json records mirrorctl's, named:
//
//	registry-mirrors            the key as a whole (daemon.json)
//	insecure-registries=<host>  one list entry (daemon.json)
//	auths=<key>                 one credentials entry (config.json)
//
// so that a sync removes exactly mirrorctl's entries and nothing else.

const keyAuths = "auths"

// ownedEntries returns the entries recorded as mirrorctl's in a file.
func ownedEntries(h Host, file string) map[string]bool {
	out := map[string]bool{}
	for _, k := range h.Owned[file].Keys {
		out[k] = true
	}
	return out
}

// releaseJSONFiles gives back the shared JSON files mirrorctl wrote into
// earlier and no longer targets (a user dropped from auth_users, a moved
// daemon_json): their recorded entries are removed and everything else
// stays; a file mirrorctl created goes once nothing else is left in it.
//
// The files come from state.json alone, which is an input like any other:
// an entry that names a file Docker's settings cannot name is ignored with
// a warning, never edited or removed.
//
// shared says which paths the engine shares at all: a state.json entry
// naming anything else is warned about and never changed or removed.
func releaseJSONFiles(h Host, rendered []render.File, w *warnList, shared func(string) bool, what string) ([]render.File, error) {
	targeted := map[string]bool{}
	for _, f := range rendered {
		targeted[f.Path] = true
	}
	var out []render.File
	for _, p := range slices.Sorted(maps.Keys(h.Owned)) {
		own := h.Owned[p]
		if targeted[p] || !own.Merged {
			continue
		}
		if !shared(p) {
			w.add(spec.Pos{}, "state.json lists %s as a file mirrorctl shares with %s, which it is not: ignored, never changed or removed", p, what)
			continue
		}
		old, exists, err := readOptional(h.FS, p)
		if err != nil {
			return nil, err
		}
		if !exists {
			out = append(out, render.File{Path: p, Remove: true, Merged: true, Release: true})
			continue
		}
		obj, err := parseJSONObject(p, old)
		if err != nil {
			return nil, err
		}
		secret := false
		for _, k := range own.Keys {
			removeEntry(obj, k)
			secret = secret || strings.HasPrefix(k, keyAuths+"=")
		}
		f := render.File{Path: p, Data: obj.marshal(), Mode: 0o644, Merged: true, Release: true, Secret: secret}
		if secret {
			f.Mode = 0o600
		}
		if own.Created && len(obj.keys) == 0 {
			f.Remove, f.Data = true, nil
		}
		if !f.Remove && !changedEntries(old, obj) {
			f.Data = old
		}
		out = append(out, f)
	}
	return out, nil
}

// dockerShared reports whether p can be a file Docker's settings name: a
// daemon.json (daemon_json) or a user's .docker/config.json (auth_users).
func dockerShared(p string) bool {
	// A daemon.json moved by engines.docker.daemon_json is given back too
	// when it lies in Docker's own directory.
	return path.Base(p) == "daemon.json" || strings.HasSuffix(p, "/.docker/config.json") ||
		(strings.HasPrefix(p, path.Dir(dockerDaemonJSON)+"/") && path.Ext(p) == ".json" && !strings.HasPrefix(p, dockerCertsDir+"/"))
}

// removeEntry removes one recorded entry from a shared JSON object; a list
// or object left empty by it goes too.
func removeEntry(obj *jsonObject, entry string) {
	key, item, hasItem := strings.Cut(entry, "=")
	raw, ok := obj.get(key)
	if !ok {
		return
	}
	switch {
	case !hasItem:
		obj.del(key)
	case key == keyAuths:
		auths, err := parseJSONObject(key, raw)
		if err != nil {
			return
		}
		auths.del(item)
		if len(auths.keys) == 0 {
			obj.del(key)
		} else {
			obj.setRaw(key, auths.marshal())
		}
	default:
		var list []string
		if json.Unmarshal(raw, &list) != nil {
			return
		}
		list = slices.DeleteFunc(list, func(e string) bool { return bareRegistry(e) == item })
		if len(list) == 0 {
			obj.del(key)
		} else {
			obj.set(key, list)
		}
	}
}

// changedEntries reports whether obj differs from the object old holds.
func changedEntries(old []byte, obj *jsonObject) bool {
	before, err := parseJSONObject("", old)
	if err != nil {
		return true
	}
	return string(before.marshal()) != string(obj.marshal())
}
