// Package config reads pipeline files: YAML into typed structs, strict about
// unknown keys, with every problem reported at once with its field path.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is one pipeline file: a single pipeline at the top level, or a list
// under `pipelines:`, plus process-wide settings.
type File struct {
	Pipelines []Pipeline `yaml:"pipelines" doc:"Several pipelines in one file, each with the keys of a single pipeline."`
	Admin     *Admin     `yaml:"admin" doc:"The HTTP admin API and dashboard, for the whole process."`
}

// Problems is every problem found in a file, each with its field path.
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return p[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(p), strings.Join(p, "\n  "))
}

// singleFile is the shape of a file that holds one pipeline at the top level.
type singleFile struct {
	Pipeline `yaml:",inline"`
	Admin    *Admin `yaml:"admin"`
}

// LoadFile reads, expands and validates a pipeline file.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading pipeline file: %w", err)
	}
	f, err := Parse(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes strictly, expands ${ENV} references inside scalar values
// with lookup (see expandEnvNodes) and validates. The returned error is a
// Problems listing everything wrong.
func Parse(data []byte, lookup func(string) (string, bool)) (*File, error) {
	var probs Problems
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := fmt.Sprintf("parsing YAML: %v%s", err, indentationHint(data, err))
		if bytes.Contains(data, []byte("${")) && strings.Contains(msg, "did not find expected ',' or") {
			// ${VAR} is expanded after parsing, so in flow style it is
			// text that YAML reads first.
			msg += ` (inside [ ] or { }, quote a ${VAR} reference: ["${VAR}"])`
		}
		return nil, Problems{msg}
	}
	if len(root.Content) == 0 {
		return nil, Problems{"file is empty"}
	}
	probs = append(probs, expandEnvNodes(&root, lookup)...)
	doc := root.Content[0]
	f := &File{}
	typeLines := map[int]bool{}
	if hasKey(doc, "pipelines") {
		probs = append(probs, checkKeys(doc, typeOf(f), "", typeLines)...)
		if err := doc.Decode(f); err != nil {
			probs = append(probs, yamlErrors(err, typeLines)...)
		}
	} else {
		var s singleFile
		probs = append(probs, checkKeys(doc, typeOf(&s), "", typeLines)...)
		if err := doc.Decode(&s); err != nil {
			probs = append(probs, yamlErrors(err, typeLines)...)
		}
		f.Pipelines = []Pipeline{s.Pipeline}
		f.Admin = s.Admin
	}
	if len(probs) > 0 && !onlyUnknownKeys(probs) {
		return nil, probs
	}
	// Unknown keys do not stop decoding the known ones, so their problems
	// are reported together with everything else.
	f.applyDefaults()
	probs = append(probs, f.Validate()...)
	if len(probs) > 0 {
		return nil, probs
	}
	return f, nil
}

func hasKey(n *yaml.Node, key string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// yamlErrors are the decoder's problems, less those checkKeys already
// named with their field path (on the lines in named).
func yamlErrors(err error, named map[int]bool) []string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range te.Errors {
		var line int
		if _, err := fmt.Sscanf(e, "line %d:", &line); err == nil && named[line] {
			continue
		}
		out = append(out, e)
	}
	return out
}

func onlyUnknownKeys(probs Problems) bool {
	for _, p := range probs {
		if !strings.Contains(p, ": unknown key (line ") {
			return false
		}
	}
	return true
}
