package spec

// This file fixes the loader's API; load.go implements it.

// Options say where a spec's references are read from. The spec, its
// drop-ins and the secret and TLS files it names are read from mirrorctl's
// own filesystem (not under --root): relative paths are relative to the
// directory of the file that names them.
type Options struct {
	// ReadFile reads a file; nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
	// Glob lists files matching a pattern; nil means filepath.Glob.
	Glob func(pattern string) ([]string, error)
	// LookupEnv resolves `password_env`; nil means os.LookupEnv.
	LookupEnv func(key string) (string, bool)
	// Engines reads each engine's engines.<name>: section, by engine name
	// (engines.Sections()); a section of any other name is an error.
	Engines map[string]SectionParser
}
