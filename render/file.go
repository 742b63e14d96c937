// Package render turns the files the engines want into a plan against the
// disk (a diff per file) and applies it with atomic writes through hostfs.
package render

import "io/fs"

// A File is the desired content of one host file, as an engine renders it.
type File struct {
	// Path is absolute on the host (for example "/etc/docker/daemon.json");
	// it is resolved under --root when read or written.
	Path string
	// Data is the full desired content. Ignored when Remove is set.
	Data []byte
	// Mode is the permission to create the file with. An existing file keeps
	// its mode unless Secret is set, which forces 0600.
	Mode fs.FileMode
	// ForceMode applies Mode to an existing file too (restoring a backup
	// puts back the exact mode).
	ForceMode bool
	// Secret marks a file that holds credentials: written 0600, and never
	// diffed line by line.
	Secret bool
	// Remove asks for the file to be deleted (a file mirrorctl wrote earlier
	// that the spec no longer needs).
	Remove bool
	// Merged marks a file the engine merges into (daemon.json, config.toml,
	// config.json, crictl.yaml): the user's own keys survive, so it is shared,
	// never an ownership conflict. Other files are owned whole by mirrorctl.
	Merged bool
	// Keys are, in a merged file, the entries mirrorctl wrote and owns
	// (engine-defined names): recorded in state.json, so that a later sync
	// removes exactly these and nothing of the user's.
	Keys []string
	// Release marks a shared file mirrorctl gives back: its entries are
	// removed and, once written, it is no longer recorded as mirrorctl's.
	Release bool
	// Group names the set of files that change as one unit, such as a
	// registry directory of containerd's certs.d; empty for a lone file.
	Group string
	// Primary marks the file of a group that names the others (hosts.toml):
	// it is written after them and removed before them, so that an engine
	// reading the directory never finds it pointing at a missing file.
	Primary bool
	// Owner, when not nil, is who a newly created file belongs to when root
	// writes it (a restored backup's owner). Files in a user's directory are
	// written with that user's rights and belong to the user regardless.
	Owner *Owner
}

// Owner is a numeric file owner.
type Owner struct{ UID, GID int }

// Ownership is what mirrorctl recorded about a file it wrote.
type Ownership struct {
	// Merged: a shared file; Keys are mirrorctl's entries in it.
	Merged bool     `json:"merged,omitempty"`
	Keys   []string `json:"keys,omitempty"`
	// Created: the file did not exist before mirrorctl wrote it, so it
	// may go once nothing is left in it.
	Created bool `json:"created,omitempty"`
}
