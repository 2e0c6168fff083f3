package registry

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Compatibility levels, as Confluent names them.
const (
	compatNone               = "NONE"
	compatBackward           = "BACKWARD"
	compatBackwardTransitive = "BACKWARD_TRANSITIVE"
	compatForward            = "FORWARD"
	compatForwardTransitive  = "FORWARD_TRANSITIVE"
	compatFull               = "FULL"
	compatFullTransitive     = "FULL_TRANSITIVE"
)

func validCompatibility(level string) bool {
	switch level {
	case compatNone, compatBackward, compatBackwardTransitive, compatForward,
		compatForwardTransitive, compatFull, compatFullTransitive:
		return true
	}
	return false
}

// maxReferenceDepth bounds how deep schema references may nest, so that a
// reference cycle cannot loop forever.
const maxReferenceDepth = 32

// parseAvro parses an Avro schema, resolving its references (named types
// defined by other subjects' versions) first. Each parse gets its own
// SchemaCache: hamba's default cache is global, and would let one subject's
// "com.example.User" leak into another's schema.
func (st *state) parseAvro(text string, refs []reference) (avro.Schema, error) {
	cache := &avro.SchemaCache{}
	if err := st.loadReferences(cache, refs, 0); err != nil {
		return nil, err
	}
	return parseWithCache(text, cache)
}

func (st *state) loadReferences(cache *avro.SchemaCache, refs []reference, depth int) error {
	if depth > maxReferenceDepth {
		return fmt.Errorf("schema references nest deeper than %d levels", maxReferenceDepth)
	}
	for _, ref := range refs {
		sub, ok := st.Subjects[ref.Subject]
		if !ok {
			return fmt.Errorf("reference %q: subject %q not found", ref.Name, ref.Subject)
		}
		v, ok := sub.find(ref.Version, false)
		if !ok {
			return fmt.Errorf("reference %q: subject %q has no version %d", ref.Name, ref.Subject, ref.Version)
		}
		s := st.byID[v.ID]
		if s.Type != typeAvro {
			return fmt.Errorf("reference %q: subject %q version %d is %s, not AVRO", ref.Name, ref.Subject, ref.Version, s.Type)
		}
		if err := st.loadReferences(cache, s.References, depth+1); err != nil {
			return err
		}
		// Parsing into cache registers the named types the reference defines.
		if _, err := parseWithCache(s.Schema, cache); err != nil {
			return fmt.Errorf("reference %q: %w", ref.Name, err)
		}
	}
	return nil
}

// parseWithCache is avro.ParseWithCache that turns a parser panic on a
// hostile schema into an error.
func parseWithCache(text string, cache *avro.SchemaCache) (s avro.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("parsing schema: %v", r)
		}
	}()
	return avro.ParseWithCache(text, "", cache)
}

// checkCompatibility returns why candidate may not be registered after
// previous (oldest first, live versions only) under level; nil means it may.
func checkCompatibility(level string, candidate avro.Schema, previous []avro.Schema, previousVersions []int) []string {
	if level == compatNone || len(previous) == 0 {
		return nil
	}
	transitive := strings.HasSuffix(level, "_TRANSITIVE")
	base := strings.TrimSuffix(level, "_TRANSITIVE")
	from := len(previous) - 1
	if transitive {
		from = 0
	}
	var problems []string
	for i := len(previous) - 1; i >= from; i-- {
		old, v := previous[i], previousVersions[i]
		// A fresh checker each time: hamba caches results by canonical
		// fingerprint, which ignores defaults, so a shared cache could answer
		// for a different pair of schemas.
		if base == compatBackward || base == compatFull {
			if err := avro.NewSchemaCompatibility().Compatible(candidate, old); err != nil {
				problems = append(problems, fmt.Sprintf("the new schema cannot read data written with version %d (%s): %v", v, base, err))
			}
		}
		if base == compatForward || base == compatFull {
			if err := avro.NewSchemaCompatibility().Compatible(old, candidate); err != nil {
				problems = append(problems, fmt.Sprintf("version %d cannot read data written with the new schema (%s): %v", v, base, err))
			}
		}
	}
	return problems
}
