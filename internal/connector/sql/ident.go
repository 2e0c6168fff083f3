package sql

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Identifiers reach SQL text in two ways: from the pipeline file (table and
// column names, checked by config and again here) and from the data (field
// names, when create_table builds a table from a record). Both are always
// quoted; names from data must also look like ordinary column names, so a
// hostile producer cannot name a column `x" text); DROP TABLE films; --`.

// dataName is what a field name must look like to become a column.
var dataName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// checkName reports whether s may be quoted as an identifier: at most 63
// bytes of valid UTF-8 without NUL or control characters, and none of the
// quote characters (so quoting never depends on escaping).
func checkName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty name")
	case len(s) > 63:
		return fmt.Errorf("name %q is longer than 63 bytes", s)
	case !utf8.ValidString(s):
		return fmt.Errorf("name %q is not valid UTF-8", s)
	case strings.ContainsAny(s, "\"`"):
		return fmt.Errorf("name %q contains a quote character", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("name %q contains a control character", s)
		}
	}
	return nil
}

// tableName is a possibly schema-qualified table name.
type tableName struct {
	schema string // "" = the connection's default
	name   string
}

func parseTableName(s string) (tableName, error) {
	parts := strings.Split(s, ".")
	var t tableName
	switch len(parts) {
	case 1:
		t.name = parts[0]
	case 2:
		t.schema, t.name = parts[0], parts[1]
	default:
		return t, fmt.Errorf("table name %q has more than one dot", s)
	}
	for _, p := range parts {
		if err := checkName(p); err != nil {
			return t, fmt.Errorf("table name: %w", err)
		}
	}
	return t, nil
}

func (t tableName) String() string {
	if t.schema == "" {
		return t.name
	}
	return t.schema + "." + t.name
}

// quoter quotes identifiers for one dialect.
type quoter byte

const (
	ansiQuote     quoter = '"'
	backtickQuote quoter = '`'
)

// ident quotes one checked name.
func (q quoter) ident(s string) string {
	return string(q) + s + string(q)
}

// table quotes a table name.
func (q quoter) table(t tableName) string {
	if t.schema == "" {
		return q.ident(t.name)
	}
	return q.ident(t.schema) + "." + q.ident(t.name)
}

// list quotes names and joins them with commas.
func (q quoter) list(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q.ident(n))
	}
	return b.String()
}
