// Package render turns the files the engines want into a plan against the
// disk (a diff per file) and applies it with atomic writes.
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
	// Secret marks a file that holds credentials: written 0600, and its
	// diff is redacted.
	Secret bool
	// Remove asks for the file to be deleted (a file mirrorctl wrote earlier
	// that the spec no longer needs).
	Remove bool
	// Merged marks a file the engine merges into (daemon.json, config.toml,
	// config.json, crictl.yaml): the user's own keys survive, so it is shared,
	// never an ownership conflict. Other files are owned whole by mirrorctl.
	Merged bool
	// Group names the set of files that change as one unit, such as a
	// registry directory of containerd's certs.d; empty for a lone file.
	Group string
	// Owner, when not nil, is who a newly created file, and any directory
	// created for it, must belong to: a user's ~/.docker/config.json is no
	// use to that user if root owns it with mode 0600. An existing file
	// keeps its owner.
	Owner *Owner
}

// Owner is a numeric file owner.
type Owner struct{ UID, GID int }
