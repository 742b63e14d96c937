package engines

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// tomlOp is one edit: Set when del is false.
type tomlOp struct {
	path []string
	v    any
	del  bool
}

func set(v any, path ...string) tomlOp { return tomlOp{path: path, v: v} }
func del(path ...string) tomlOp        { return tomlOp{path: path, del: true} }

const cri = `"io.containerd.grpc.v1.cri"`

// TestTomlDocEdits pins the bytes each edit gives, and checks that the
// result decodes to the input's decoding with the same edits made.
func TestTomlDocEdits(t *testing.T) {
	reg := []string{"plugins", "io.containerd.grpc.v1.cri", "registry"}
	cp := append(reg[:3:3], "config_path")
	tests := []struct {
		name, in string
		ops      []tomlOp
		want     string
	}{
		{name: "replace_value_only",
			in:   "[a]\n  # the path\n  config_path = \"\"   # empty: off\n  x = 1\n",
			ops:  []tomlOp{set("/etc/certs.d", "a", "config_path")},
			want: "[a]\n  # the path\n  config_path = \"/etc/certs.d\"   # empty: off\n  x = 1\n"},
		{name: "replace_keeps_literal_quotes",
			in:   "[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = ''\n",
			ops:  []tomlOp{set("/etc/certs.d", "plugins", "io.containerd.cri.v1.images", "registry", "config_path")},
			want: "[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/certs.d'\n"},
		{name: "replace_multiline_array",
			in:   "a = [\n  1, # one\n  2,\n]\nb = 2\n",
			ops:  []tomlOp{set([]any{int64(3)}, "a")},
			want: "a = [3]\nb = 2\n"},
		{name: "insert_after_own_lines",
			in:   "[plugins." + cri + ".registry]\n  x = 1\n  # next table:\n[plugins." + cri + ".registry.mirrors]\n",
			ops:  []tomlOp{set("/c", cp...)},
			want: "[plugins." + cri + ".registry]\n  x = 1\n  config_path = \"/c\"\n  # next table:\n[plugins." + cri + ".registry.mirrors]\n"},
		{name: "insert_into_empty_header_indents_a_step",
			in:   "[a]\n    k = 1\n\n  [a.b]\n  [a.b.c]\n      z = 1\n",
			ops:  []tomlOp{set("v", "a", "b", "n")},
			want: "[a]\n    k = 1\n\n  [a.b]\n      n = \"v\"\n  [a.b.c]\n      z = 1\n"},
		{name: "dotted_key_in_parent_table",
			in:   "[plugins." + cri + "]\n  sandbox_image = \"p\"\n  registry.mirrors.\"docker.io\".endpoint = [\"m\"]\n  other = 1\n",
			ops:  []tomlOp{set("/c", cp...)},
			want: "[plugins." + cri + "]\n  sandbox_image = \"p\"\n  registry.mirrors.\"docker.io\".endpoint = [\"m\"]\n  registry.config_path = \"/c\"\n  other = 1\n"},
		{name: "dotted_key_at_root",
			in:   "version = 2\nplugins." + cri + ".registry.config_path = \"\"\n",
			ops:  []tomlOp{set(map[string]any{"auth": "x"}, append(reg[:3:3], "configs", "h.example", "auth")...)},
			want: "version = 2\nplugins." + cri + ".registry.config_path = \"\"\nplugins." + cri + ".registry.configs.\"h.example\".auth = { auth = \"x\" }\n"},
		{name: "inline_table_reencoded",
			in:   "[plugins." + cri + "]\n  registry = { config_path = \"\", mirrors = {} } # inline\n  z = 1\n",
			ops:  []tomlOp{set("/c", cp...), set(map[string]any{"auth": "x"}, append(reg[:3:3], "configs", "h", "auth")...)},
			want: "[plugins." + cri + "]\n  registry = { config_path = \"/c\", configs = { h = { auth = { auth = \"x\" } } }, mirrors = {} } # inline\n  z = 1\n"},
		{name: "implicit_super_table_gets_header_before_sub_tables",
			in:   "[plugins." + cri + "]\n  x = 1\n\n  # hand auth\n  [plugins." + cri + ".registry.configs.\"h\".auth]\n    auth = \"a\"\n",
			ops:  []tomlOp{set("/c", cp...)},
			want: "[plugins." + cri + "]\n  x = 1\n\n  [plugins." + cri + ".registry]\n    config_path = \"/c\"\n\n  # hand auth\n  [plugins." + cri + ".registry.configs.\"h\".auth]\n    auth = \"a\"\n"},
		{name: "new_table_after_longest_common_prefix",
			in:   "version = 2\n\n[plugins]\n  [plugins." + cri + "]\n    [plugins." + cri + ".cni]\n      bin_dir = \"/usr/lib/cni\"\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = \"/o\"\n",
			ops:  []tomlOp{set("/c", cp...)},
			want: "version = 2\n\n[plugins]\n  [plugins." + cri + "]\n    [plugins." + cri + ".cni]\n      bin_dir = \"/usr/lib/cni\"\n    [plugins." + cri + ".registry]\n      config_path = \"/c\"\n  [plugins.\"io.containerd.internal.v1.opt\"]\n    path = \"/o\"\n"},
		{name: "new_table_blank_separated_like_its_neighbours",
			in:   "[grpc]\n  a = 1\n\n[plugins.'x']\n  b = 2\n\n[z]\n",
			ops:  []tomlOp{set("/c", "plugins", "x", "registry", "config_path")},
			want: "[grpc]\n  a = 1\n\n[plugins.'x']\n  b = 2\n\n  [plugins.'x'.registry]\n    config_path = \"/c\"\n\n[z]\n"},
		{name: "new_table_blank_separated_above_commented_neighbour",
			in:   "[a]\n  k = 1\n\n# about b\n[b]\n  c = 'x'\n[z]\n",
			ops:  []tomlOp{set("y", "b", "r", "d")},
			want: "[a]\n  k = 1\n\n# about b\n[b]\n  c = 'x'\n\n  [b.r]\n    d = 'y'\n[z]\n"},
		{name: "new_table_at_end",
			in:   "root = \"/r\"\n",
			ops:  []tomlOp{set("/c", cp...)},
			want: "root = \"/r\"\n\n[plugins." + cri + ".registry]\n  config_path = \"/c\"\n"},
		{name: "empty_file",
			in:   "",
			ops:  []tomlOp{set(map[string]any{"config_path": "/c", "configs": map[string]any{"h:5000": map[string]any{"auth": map[string]any{"auth": "x"}}}}, reg...), set(int64(2), "version")},
			want: "version = 2\n\n[plugins." + cri + ".registry]\n  config_path = \"/c\"\n  [plugins." + cri + ".registry.configs.\"h:5000\".auth]\n    auth = \"x\"\n"},
		{name: "root_key_after_root_keys",
			in:   "# top\nroot = \"/r\"\n\n[a]\n",
			ops:  []tomlOp{set(int64(2), "version")},
			want: "# top\nroot = \"/r\"\nversion = 2\n\n[a]\n"},
		{name: "root_key_above_first_table_and_its_comments",
			in:   "# file\n\n# about a\n[a]\n  k = 1\n",
			ops:  []tomlOp{set(int64(2), "version")},
			want: "# file\n\nversion = 2\n\n# about a\n[a]\n  k = 1\n"},
		{name: "crlf",
			in:   "version = 2\r\n\r\n[plugins." + cri + "]\r\n  x = 1\r\n",
			ops:  []tomlOp{set("/c", cp...), set(int64(3), "version")},
			want: "version = 3\r\n\r\n[plugins." + cri + "]\r\n  x = 1\r\n\r\n  [plugins." + cri + ".registry]\r\n    config_path = \"/c\"\r\n"},
		{name: "no_final_newline",
			in:   "[a]\n  k = 1",
			ops:  []tomlOp{set("v", "a", "n")},
			want: "[a]\n  k = 1\n  n = \"v\"\n"},
		{name: "no_final_newline_replace",
			in:   "[a]\n  k = 1",
			ops:  []tomlOp{set(int64(2), "a", "k")},
			want: "[a]\n  k = 2"},
		{name: "delete_key_keeps_comments_around",
			in:   "[a]\n  # about k\n  k = 1 # k\n  # after\n  j = 2\n",
			ops:  []tomlOp{del("a", "k")},
			want: "[a]\n  # about k\n  # after\n  j = 2\n"},
		{name: "delete_table_with_scattered_sub_tables",
			in:   "[r]\n  [r.mirrors.\"a\"]\n    endpoint = [\"x\"]\n    # inside a\n    more = 1\n  [r.configs.\"h\".auth]\n    auth = \"a\"\n\n[r.mirrors.\"b\"]\n  endpoint = []\n\n[z]\n",
			ops:  []tomlOp{del("r", "mirrors")},
			want: "[r]\n  [r.configs.\"h\".auth]\n    auth = \"a\"\n\n[z]\n"},
		{name: "delete_last_table_leaves_no_blank_tail",
			in:   "[a]\n  k = 1\n\n[b]\n  j = 2\n",
			ops:  []tomlOp{del("b")},
			want: "[a]\n  k = 1\n"},
		{name: "delete_dotted_and_inline",
			in:   "[p]\n  registry.mirrors.\"a\".endpoint = []\n  registry.config_path = ''\n  t = { mirrors = { a = 1 }, k = 2 }\n",
			ops:  []tomlOp{del("p", "registry", "mirrors"), del("p", "t", "mirrors")},
			want: "[p]\n  registry.config_path = ''\n  t = { k = 2 }\n"},
		{name: "delete_absent_is_a_no_op",
			in:   "[a]\n  k = 1\n",
			ops:  []tomlOp{del("a", "zz"), del("b"), del("a", "k", "deeper")},
			want: "[a]\n  k = 1\n"},
		{name: "replace_table_by_value",
			in:   "[a.b]\n  k = 1\n[a.c]\n",
			ops:  []tomlOp{set("s", "a", "b")},
			want: "[a]\n  b = \"s\"\n[a.c]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseTOMLDoc([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := toml.Unmarshal([]byte(tt.in), &want); err != nil {
				t.Fatal(err)
			}
			for _, op := range tt.ops {
				if op.del {
					err = d.Delete(op.path)
				} else {
					err = d.Set(op.path, op.v)
				}
				if err != nil {
					t.Fatalf("%v: %v", op.path, err)
				}
				applyToMap(want, op)
			}
			got := string(d.Bytes())
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s\n(-want +got):\n%s", got, tt.want, cmp.Diff(strings.Split(tt.want, "\n"), strings.Split(got, "\n")))
			}
			var dec map[string]any
			if err := toml.Unmarshal([]byte(got), &dec); err != nil {
				t.Fatalf("result is not TOML: %v", err)
			}
			if !reflect.DeepEqual(dec, want) {
				t.Errorf("decodes to %v, want %v", dec, want)
			}
		})
	}
}

// applyToMap makes op on a decoded document: what the bytes must decode to.
func applyToMap(m map[string]any, op tomlOp) {
	for _, k := range op.path[:len(op.path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			if op.del {
				return
			}
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	if op.del {
		delete(m, op.path[len(op.path)-1])
	} else {
		m[op.path[len(op.path)-1]] = op.v
	}
}

func TestTomlDocRefuses(t *testing.T) {
	tests := []struct {
		name, in string
		op       tomlOp
		err      string
	}{
		{"into_array_of_tables", "[[a.b]]\n  k = 1\n", set("v", "a", "b", "k"), "array of tables"},
		{"array_below", "[[a.b]]\n  k = 1\n", set("v", "a"), "array of tables"},
		{"through_a_value", "a = 1\n", set("v", "a", "b"), "not a table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseTOMLDoc([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			err = d.Set(tt.op.path, tt.op.v)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
		})
	}
	if _, err := parseTOMLDoc([]byte("[a\n")); err == nil {
		t.Error("parsing a broken file did not fail")
	}
}

// TestTomlDocEveryPathOfStockFiles edits every key and table of the stock
// config.toml files one at a time: each result must decode to the
// original with that one edit, and a changed value must change one line.
func TestTomlDocEveryPathOfStockFiles(t *testing.T) {
	for _, sc := range stockConfigs() {
		t.Run(sc.file, func(t *testing.T) {
			in := readStock(t, sc.file)
			var orig map[string]any
			if err := toml.Unmarshal(in, &orig); err != nil {
				t.Fatal(err)
			}
			var leaves, tables [][]string
			var walk func(path []string, m map[string]any)
			walk = func(path []string, m map[string]any) {
				for _, k := range sortedKeys(m) {
					p := append(path[:len(path):len(path)], k)
					if sub, ok := m[k].(map[string]any); ok {
						tables = append(tables, p)
						walk(p, sub)
					} else {
						leaves = append(leaves, p)
					}
				}
			}
			walk(nil, orig)
			var ops []tomlOp
			for _, p := range leaves {
				ops = append(ops, set("changed", p...))
			}
			for _, p := range tables {
				ops = append(ops, del(p...), set(int64(7), append(p, "zz_new")...))
			}
			for _, op := range ops {
				d, err := parseTOMLDoc(in)
				if err != nil {
					t.Fatal(err)
				}
				if op.del {
					err = d.Delete(op.path)
				} else {
					err = d.Set(op.path, op.v)
				}
				if err != nil {
					t.Fatalf("%v: %v", op.path, err)
				}
				var want, got map[string]any
				_ = toml.Unmarshal(in, &want)
				applyToMap(want, op)
				if err := toml.Unmarshal(d.Bytes(), &got); err != nil {
					t.Fatalf("%v: not TOML any more: %v", op.path, err)
				}
				if !reflect.DeepEqual(pruneEmptyMaps(got), pruneEmptyMaps(want)) {
					t.Errorf("%v (del %v): decodes to something else", op.path, op.del)
				}
				if !op.del && op.v == "changed" {
					a, b := strings.Split(string(in), "\n"), strings.Split(string(d.Bytes()), "\n")
					diff := 0
					for i := range min(len(a), len(b)) {
						if a[i] != b[i] {
							diff++
						}
					}
					if len(a) != len(b) || diff != 1 {
						t.Errorf("%v: %d lines changed, %d → %d lines", op.path, diff, len(a), len(b))
					}
				}
			}
			t.Logf("%d values set, %d tables deleted and extended", len(leaves), len(tables))
		})
	}
}

// pruneEmptyMaps drops empty tables: deleting a table's only sub-table
// also ends a parent that only that header made exist.
func pruneEmptyMaps(m map[string]any) map[string]any {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			if len(pruneEmptyMaps(sub)) == 0 {
				delete(m, k)
			}
		}
	}
	return m
}

// FuzzTomlDoc: on any file go-toml accepts, Set and Delete never panic and
// leave a file that decodes to the original with that one edit.
func FuzzTomlDoc(f *testing.F) {
	f.Add("[a]\n  k = 1\n", "a.k", false)
	f.Add("a.b = { c = 1 }\n[x]\n", "a.b.d", false)
	f.Add("[[t]]\n[a.'b.c']\nk = 'v'\r\n", "a.b.c", true)
	f.Add("# c\n\n[p.q.r]\n  s = [1,\n 2]\n", "p.q.n", false)
	f.Fuzz(func(t *testing.T, src, dotted string, del bool) {
		var orig map[string]any
		// Keys come from decoded TOML: valid UTF-8.
		if toml.Unmarshal([]byte(src), &orig) != nil || dotted == "" || !utf8.ValidString(dotted) {
			return
		}
		d, err := parseTOMLDoc([]byte(src))
		if err != nil {
			t.Fatalf("go-toml decodes it but the editor cannot parse it: %v", err)
		}
		op := tomlOp{path: strings.Split(dotted, "."), v: "fuzz", del: del}
		if del {
			err = d.Delete(op.path)
		} else {
			err = d.Set(op.path, op.v)
		}
		if err != nil {
			return // refused: the caller falls back
		}
		var got map[string]any
		if err := toml.Unmarshal(d.Bytes(), &got); err != nil {
			t.Fatalf("%q after %+v is not TOML: %v\n%s", src, op, err, d.Bytes())
		}
		applyToMap(orig, op)
		if !reflect.DeepEqual(pruneEmptyMaps(got), pruneEmptyMaps(orig)) {
			t.Fatalf("%q after %+v decodes to %v, want %v\n%s", src, op, got, orig, d.Bytes())
		}
	})
}

// TestLastKeyScansOnlyItsTable: lastKey looks only at the entries after a
// header (what makes Delete linear) and finds what a scan of the whole
// file finds, on the stock configs and the fuzz seeds.
func TestLastKeyScansOnlyItsTable(t *testing.T) {
	var docs [][]byte
	for _, c := range stockConfigs() {
		docs = append(docs, readStock(t, c.file))
	}
	docs = append(docs, []byte("a = 1\n[t]\nb = 2\nc.d = 3\n[[u]]\n[[u]]\ne = 4\n[v.w]\n[x]\nf = {g = 1}\n"))
	for _, src := range docs {
		d, err := parseTOMLDoc(src)
		if err != nil {
			t.Fatal(err)
		}
		for hdr := -1; hdr < len(d.ents); hdr++ {
			want := -1
			for i, e := range d.ents {
				if e.kind == unstable.KeyValue && e.table == hdr {
					want = i
				}
			}
			if got := d.lastKey(hdr); got != want {
				t.Fatalf("lastKey(%d) = %d, want %d", hdr, got, want)
			}
		}
	}
}
