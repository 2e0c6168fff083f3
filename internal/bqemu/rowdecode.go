package bqemu

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// missingValues is how a request asks BigQuery to fill top-level columns a
// row leaves out: per column, with a default for the others.
type missingValues struct {
	byColumn map[string]storagepb.AppendRowsRequest_MissingValueInterpretation
	fallback storagepb.AppendRowsRequest_MissingValueInterpretation
}

func (mv missingValues) interpretation(column string) storagepb.AppendRowsRequest_MissingValueInterpretation {
	for name, i := range mv.byColumn {
		if strings.EqualFold(name, column) {
			return i
		}
	}
	return mv.fallback
}

// rowDecoder turns serialized rows of one writer schema into canonical JSON
// rows of one table schema version.
type rowDecoder struct {
	msgType protoreflect.MessageType
	plan    *messagePlan
	version int64
}

// decode decodes and validates one serialized row. An error is the row's
// error message, reported in row_errors.
func (d *rowDecoder) decode(raw []byte, mv missingValues, now time.Time) ([]byte, error) {
	m := d.msgType.New()
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(raw, m.Interface()); err != nil {
		return nil, rowErrorf("Could not parse the row as the writer schema's message: %v", err)
	}
	row, err := d.plan.decode(m, "", &mv, now)
	if err != nil {
		return nil, err
	}
	return json.Marshal(row)
}

// rowError is one row's error message, in BigQuery's own wording
// (capitalised), as row_errors reports it.
type rowError struct{ msg string }

func (e *rowError) Error() string { return e.msg }

func rowErrorf(format string, args ...any) error {
	return &rowError{fmt.Sprintf(format, args...)}
}

// decode converts message m; mv is nil below the top level, where missing
// value interpretations do not apply.
func (p *messagePlan) decode(m protoreflect.Message, path string, mv *missingValues, now time.Time) (map[string]any, error) {
	if len(m.GetUnknown()) > 0 {
		where := "the row"
		if path != "" {
			where = "field " + strings.TrimSuffix(path, ".")
		}
		return nil, rowErrorf("The proto row has unknown fields in %s", where)
	}
	out := make(map[string]any, len(p.fields))
	for _, fp := range p.fields {
		name := path + fp.col.Name
		if fp.fd.IsList() {
			list := m.Get(fp.fd).List()
			if list.Len() == 0 {
				continue
			}
			vals := make([]any, list.Len())
			for i := range list.Len() {
				v, err := fp.value(list.Get(i), name, now)
				if err != nil {
					return nil, err
				}
				vals[i] = v
			}
			out[fp.col.Name] = vals
			continue
		}
		// A proto2 field left unset is NULL, unless the descriptor gives it
		// an explicit default (as adapt.NormalizeDescriptor does for proto3
		// fields without presence), which BigQuery then writes.
		if !m.Has(fp.fd) && !fp.fd.HasDefault() {
			continue
		}
		v, err := fp.value(m.Get(fp.fd), name, now)
		if err != nil {
			return nil, err
		}
		out[fp.col.Name] = v
	}
	for _, col := range p.columns {
		if _, ok := out[col.Name]; ok {
			continue
		}
		if mv != nil && mv.interpretation(col.Name) == storagepb.AppendRowsRequest_DEFAULT_VALUE && col.DefaultValueExpression != "" {
			v, err := evalDefault(col, now)
			if err != nil {
				return nil, rowErrorf("Field %s: %v", path+col.Name, err)
			}
			if v != nil {
				out[col.Name] = v
				continue
			}
		}
		if col.Mode == modeRequired {
			return nil, rowErrorf("Field %s: required field is missing", path+col.Name)
		}
	}
	return out, nil
}

func (fp *fieldPlan) value(v protoreflect.Value, name string, now time.Time) (any, error) {
	if fp.sub != nil {
		return fp.sub.decode(v.Message(), name+".", nil, now)
	}
	s, err := fp.conv(v)
	if err != nil {
		return nil, rowErrorf("Field %s: %v", name, err)
	}
	return s, nil
}

// evalDefault evaluates the literal default value expressions BigQuery
// allows most often; nil means NULL. Anything else is left to NULL, since
// the emulator has no SQL engine.
func evalDefault(col *bq.TableFieldSchema, now time.Time) (any, error) {
	expr := strings.TrimSpace(col.DefaultValueExpression)
	upper := strings.ToUpper(expr)
	switch {
	case upper == "NULL":
		return nil, nil
	case strings.HasPrefix(upper, "CURRENT_TIMESTAMP"):
		return canonicalTimestampMicros(now.UnixMicro())
	case strings.HasPrefix(upper, "CURRENT_DATE"):
		return now.UTC().Format(time.DateOnly), nil
	case strings.HasPrefix(upper, "CURRENT_DATETIME"):
		return parseDatetime(now.UTC().Format("2006-01-02T15:04:05.999999"))
	}
	lit := expr
	if len(lit) >= 2 && (lit[0] == '\'' || lit[0] == '"') && lit[len(lit)-1] == lit[0] {
		lit = lit[1 : len(lit)-1]
	}
	var s string
	var err error
	switch col.Type {
	case typeString, typeJSON, typeGeography:
		s = lit
	case typeBoolean:
		s = strings.ToLower(lit)
		if s != "true" && s != "false" {
			return nil, nil
		}
	case typeInteger, typeFloat:
		s = lit
	case typeNumeric, typeBigNumeric:
		s, err = parseDecimal(lit, col.Type)
	case typeTimestamp:
		s, err = parseTimestamp(lit)
	case typeDate:
		s, err = parseDate(lit)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}
