package bigquery

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTableNameBytes is BigQuery's limit on a table name.
const maxTableNameBytes = 1024

// maxColumnNameLen is BigQuery's limit on a column name.
const maxColumnNameLen = 300

// errTableName is the cause of every table name that cannot be made valid.
var errTableName = errors.New("not a valid BigQuery table name")

// tableName makes a rendered template a valid BigQuery table name.
//
// BigQuery allows letters, marks, numbers, connector punctuation (`_`)
// and dashes (Unicode L, M, N, Pc, Pd) and spaces, up to 1,024 bytes.
// Anything else, and spaces (valid, but a trap in every tool downstream),
// becomes `_`, so `kafka-{{.Topic}}` over `orders.v1` gives
// `kafka-orders_v1`. A name that is empty or too long is refused rather
// than truncated: truncating could send two destinations to one table.
func tableName(rendered string) (string, error) {
	if rendered == "" {
		return "", fmt.Errorf("%w: the template rendered an empty name", errTableName)
	}
	valid := true
	for _, r := range rendered {
		if !tableRune(r) {
			valid = false
			break
		}
	}
	name := rendered
	if !valid {
		var b strings.Builder
		b.Grow(len(rendered))
		for _, r := range rendered {
			if tableRune(r) {
				b.WriteRune(r)
			} else {
				b.WriteByte('_')
			}
		}
		name = b.String()
	}
	if len(name) > maxTableNameBytes {
		return "", fmt.Errorf("%w: %q is %d bytes long, the limit is %d", errTableName, clip(rendered, 64), len(name), maxTableNameBytes)
	}
	if !valid && strings.Trim(name, "_") == "" {
		return "", fmt.Errorf("%w: %q has no letter or digit BigQuery allows", errTableName, clip(rendered, 64))
	}
	return name, nil
}

func tableRune(r rune) bool {
	if r == utf8.RuneError {
		return false
	}
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.Pc, unicode.Pd)
}

// reservedColumnPrefixes are prefixes BigQuery refuses in column names
// (compared case-insensitively).
var reservedColumnPrefixes = []string{"_table_", "_file_", "_partition", "_row_timestamp", "__root__", "_colidentifier"}

// columnName makes a record field name a valid column name: letters,
// digits and underscores, not starting with a digit, at most 300
// characters, and none of the reserved prefixes. Avro names are valid
// already and come back unchanged; JSON keys such as `user-id` become
// `user_id`.
func columnName(field string) string {
	ok := field != "" && len(field) <= maxColumnNameLen && !(field[0] >= '0' && field[0] <= '9')
	for i := 0; ok && i < len(field); i++ {
		ok = columnByte(field[i])
	}
	if ok && !reservedColumn(field) {
		return field
	}
	var b strings.Builder
	if field == "" || (field[0] >= '0' && field[0] <= '9') {
		b.WriteByte('_')
	}
	for i := 0; i < len(field) && b.Len() < maxColumnNameLen; i++ {
		if c := field[i]; columnByte(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if reservedColumn(name) {
		name = "_" + name
	}
	if len(name) > maxColumnNameLen {
		name = name[:maxColumnNameLen]
	}
	return name
}

func columnByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func reservedColumn(name string) bool {
	for _, p := range reservedColumnPrefixes {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
