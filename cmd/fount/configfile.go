package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// applyConfigFile sets, from the YAML file at path, every flag of fs that was
// set neither on the command line nor by its FOUNT_<FLAG> variable, so flags
// win over the environment, which wins over the file, which wins over the
// defaults. File keys are flag names ("rtmp-addr", "segment-duration", ...);
// values are YAML scalars, parsed as the flag would parse them ("2s" for a
// duration). Every problem in the file is reported, each naming the file and
// the key, including values that a flag or variable overrides. The one key
// that is no flag's value, streams (per-stream settings, streams.go), goes
// to the hidden flag that holds it.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	return loadConfigFile(fs, path, func(f *pflag.Flag) bool {
		if f.Changed {
			return true
		}
		_, ok := os.LookupEnv(envName(f.Name))
		return ok
	})
}

// loadConfigFile applies the file at path to fs, leaving alone the flags for
// which overridden reports true (their values are still checked).
func loadConfigFile(fs *pflag.FlagSet, path string, overridden func(*pflag.Flag) bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err // *PathError names the file
	}
	root, err := parseConfigYAML(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if root == nil {
		return nil // empty file, or only comments
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: line %d: want a mapping of flag names to values (rtmp-addr: \":1935\"), got %s",
			path, root.Line, nodeKind(root))
	}

	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
	}
	for k, v := range mappingKeys(root, "a key must be a flag name", "duplicate key", fail) {
		key := k.Value
		if key == "config" {
			fail("key %q: a config file cannot name another config file (line %d)", key, k.Line)
			continue
		}
		f := fs.Lookup(key)
		if f != nil {
			if sf, ok := f.Value.(streamsFlag); ok {
				*sf.dst = parseStreams(path, v, fail) // streams.go
				continue
			}
		}
		if f == nil || key == "help" || f.Hidden {
			if s := closestFlag(fs, key); s != "" {
				fail("unknown key %q (line %d); did you mean %s?", key, k.Line, s)
			} else {
				fail("unknown key %q (line %d)", key, k.Line)
			}
			continue
		}
		value, err := scalarValue(v)
		if err != nil {
			fail("key %q: %v", key, err)
			continue
		}
		// Check on a scratch flag first: a failed Set can leave the flag
		// holding a zero value (pflag's int does), which validate() would
		// then report as a second, misleading problem.
		err = checkFlagValue(f, value)
		if err == nil && !overridden(f) {
			err = fs.Set(key, value)
		}
		if err != nil {
			fail("key %q: %v (line %d)", key, err, v.Line)
		}
	}
	return errors.Join(errs...)
}

// mappingKeys yields mapping m's scalar keys, each once, with their values;
// a key that is not a scalar (notScalar, e.g. "a key must be a flag name")
// or repeats one before it (dup, e.g. "duplicate key") is reported through
// fail and skipped.
func mappingKeys(m *yaml.Node, notScalar, dup string, fail func(format string, args ...any)) iter.Seq2[*yaml.Node, *yaml.Node] {
	return func(yield func(k, v *yaml.Node) bool) {
		seen := map[string]int{} // key → line of its first occurrence
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			if k.Kind == yaml.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				fail("line %d: %s, got %s", k.Line, notScalar, nodeKind(k))
				continue
			}
			if first, ok := seen[k.Value]; ok {
				fail("%s %q (lines %d and %d)", dup, k.Value, first, k.Line)
				continue
			}
			seen[k.Value] = k.Line
			if !yield(k, v) {
				return
			}
		}
	}
}

// parseConfigYAML returns the top node of the file's single document, or nil
// for a file with no content.
func parseConfigYAML(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(err)
	default:
		return nil, fmt.Errorf("line %d: a config file holds one YAML document, found another", next.Line)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return nil, nil
	}
	return top, nil
}

// yamlError drops the package prefix: "yaml: line 3: ..." → "line 3: ...".
func yamlError(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "yaml: "); ok {
		return errors.New(msg)
	}
	return err
}

// scalarValue is the text a flag is set from: a YAML string, number or
// boolean as written.
func scalarValue(v *yaml.Node) (string, error) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want a single value (string, number or boolean), got %s (line %d)", nodeKind(v), v.Line)
	}
	if v.Tag == "!!null" {
		return "", fmt.Errorf("no value (line %d); write \"\" for an empty string", v.Line)
	}
	return v.Value, nil
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "a document"
}

// checkFlagValue reports whether f would accept value, without changing f:
// a flag given on the command line or in the environment still has its
// file value checked, so a broken file is broken however it is used.
func checkFlagValue(f *pflag.Flag, value string) error {
	scratch := pflag.NewFlagSet("check", pflag.ContinueOnError)
	switch f.Value.Type() {
	case "string":
		scratch.String(f.Name, "", "")
	case "int":
		scratch.Int(f.Name, 0, "")
	case "bool":
		scratch.Bool(f.Name, false, "")
	case "duration":
		scratch.Duration(f.Name, time.Duration(0), "")
	case "bytes":
		var b byteSize
		scratch.Var(&b, f.Name, "")
	default:
		return nil // a type this file does not know: the flag itself decides
	}
	return scratch.Set(f.Name, value)
}

// closestFlag suggests the flag a mistyped key probably meant, or "".
func closestFlag(fs *pflag.FlagSet, key string) string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if _, streams := f.Value.(streamsFlag); streams || f.Name != "help" && f.Name != "config" && !f.Hidden {
			names = append(names, f.Name)
		}
	})
	return closestName(names, key)
}

// closestName suggests the name a mistyped key probably meant, or "".
func closestName(names []string, key string) string {
	norm := normalizeKey(key)
	names = append([]string(nil), names...)
	sort.Strings(names)
	best, bestDist := "", -1
	for _, name := range names {
		d := editDistance(norm, name)
		if bestDist < 0 || d < bestDist {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	limit := 2
	if len(best) >= 10 {
		limit = 3
	}
	if bestDist > limit || bestDist >= len(best) {
		return ""
	}
	return best
}

// normalizeKey maps the usual misspellings of a flag name onto its form:
// "--rtmp-addr", "RTMP_ADDR", "FOUNT_RTMP_ADDR", "rtmp addr" → "rtmp-addr".
func normalizeKey(key string) string {
	k := strings.ToLower(strings.TrimSpace(key))
	k = strings.TrimLeft(k, "-")
	k = strings.TrimPrefix(k, "fount_")
	return strings.NewReplacer("_", "-", " ", "-", ".", "-").Replace(k)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// newConfigCmd returns `fount config`, whose `check FILE` loads FILE as
// `fount serve --config FILE` would (ignoring flags and FOUNT_* variables)
// and validates the result.
func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "config",
		Short:         "Work with config files for fount serve --config",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())}
			}
			return c.Help()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a config file: every key known, every value valid",
		Long: `Check a config file: every key must be a flag of fount serve (or streams,
the per-stream settings), every value must parse, and the resulting settings
must pass the same checks fount serve makes. Flags and FOUNT_* variables
are ignored. Prints "FILE: ok", or every problem and exits 2.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("config check takes one FILE, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			path := args[0]
			cfg := defaultConfig()
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			cfg.flags(fs)
			var errs []error
			if err := loadConfigFile(fs, path, func(*pflag.Flag) bool { return false }); err != nil {
				errs = append(errs, err)
				var pe *os.PathError
				if errors.As(err, &pe) {
					return usageError{err} // nothing was read, so nothing to validate
				}
			}
			if err := cfg.validate(); err != nil {
				for _, e := range unjoin(err) {
					if !strings.HasPrefix(e.Error(), path+": ") { // a problem of the file's streams names it already
						e = fmt.Errorf("%s: %w", path, e)
					}
					errs = append(errs, e)
				}
			}
			if len(errs) > 0 {
				return usageError{errors.Join(errs...)}
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: ok\n", path)
			return nil
		},
	})
	return cmd
}

// unjoin splits an errors.Join result back into its errors.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
