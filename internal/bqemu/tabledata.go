package bqemu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/civil"
	bq "google.golang.org/api/bigquery/v2"
)

// maxPageRows bounds one tabledata.list page (BigQuery bounds it by bytes).
const maxPageRows = 10000

// listTableData serves tabledata.list: rows in commit order, as
// {"f":[{"v":...}]}, paged by maxResults and pageToken (or startIndex).
func (e *Emulator) listTableData(w http.ResponseWriter, r *http.Request) {
	k := tblKey(r)
	t, err := e.cat.table(k)
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	start, size, err := page(r, maxPageRows)
	if err != nil {
		writeError(w, err)
		return
	}
	if s := q.Get("startIndex"); s != "" && q.Get("pageToken") == "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			writeError(w, invalidf("Invalid startIndex: %q", s))
			return
		}
		start = int(n)
	}
	fields, _ := t.schema()
	if sel := q.Get("selectedFields"); sel != "" {
		var picked []*bq.TableFieldSchema
		for _, name := range strings.Split(sel, ",") {
			f := findField(fields, strings.TrimSpace(name))
			if f == nil {
				writeError(w, invalidf("Invalid field selection %s", name))
				return
			}
			picked = append(picked, f)
		}
		fields = picked
	}
	int64Timestamps := q.Get("formatOptions.useInt64Timestamp") == "true"

	raw, total, err := e.cat.readRows(r.Context(), t, int64(start), size)
	if err != nil {
		writeError(w, err)
		return
	}
	out := &bq.TableDataList{Kind: "bigquery#tableDataList", TotalRows: total, ForceSendFields: []string{"TotalRows"}}
	for _, b := range raw {
		var row map[string]any
		if err := json.Unmarshal(b, &row); err != nil {
			writeError(w, fmt.Errorf("decoding stored row of %s: %w", k, err))
			return
		}
		out.Rows = append(out.Rows, renderRecord(fields, row, int64Timestamps))
	}
	if next := int64(start + len(raw)); next < total && len(raw) > 0 {
		out.PageToken = strconv.FormatInt(next, 10)
	}
	out.Etag = strconv.FormatInt(total, 36)
	writeJSON(w, http.StatusOK, out)
}

// renderRecord renders a canonical row (or RECORD value) in the REST form,
// by the current schema: columns the row lacks are null, repeated ones [].
func renderRecord(fields []*bq.TableFieldSchema, row map[string]any, int64Timestamps bool) *bq.TableRow {
	cells := make([]*bq.TableCell, len(fields))
	for i, f := range fields {
		cells[i] = &bq.TableCell{V: renderValue(f, row[f.Name], int64Timestamps, true)}
	}
	return &bq.TableRow{F: cells}
}

func renderValue(f *bq.TableFieldSchema, v any, int64Timestamps, top bool) any {
	if top && f.Mode == modeRepeated {
		list, _ := v.([]any)
		out := make([]*bq.TableCell, len(list))
		for i, x := range list {
			out[i] = &bq.TableCell{V: renderValue(f, x, int64Timestamps, false)}
		}
		return out
	}
	if v == nil {
		return nil
	}
	if f.Type == typeRecord {
		m, _ := v.(map[string]any)
		return renderRecord(f.Fields, m, int64Timestamps)
	}
	if f.Type == typeTimestamp && !int64Timestamps {
		// The pre-int64 wire form: seconds since the epoch as a float.
		us, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
		return strconv.FormatFloat(float64(us)/1e6, 'E', -1, 64)
	}
	return v
}

// Rows returns every committed row of a table in commit order, keyed by
// column name, with values typed as cloud.google.com/go/bigquery types
// them: STRING, JSON and GEOGRAPHY string, BYTES []byte, INTEGER int64,
// FLOAT float64, BOOLEAN bool, TIMESTAMP time.Time (UTC), DATE civil.Date,
// TIME civil.Time, DATETIME civil.DateTime, NUMERIC and BIGNUMERIC
// *big.Rat, RECORD map[string]any, REPEATED []any; NULL is nil. Every
// column of the current schema is present.
func (e *Emulator) Rows(ctx context.Context, project, dataset, table string) ([]map[string]any, error) {
	k := tableKey{project, dataset, table}
	t, err := e.cat.table(k)
	if err != nil {
		return nil, err
	}
	fields, _ := t.schema()
	var out []map[string]any
	for start := int64(0); ; {
		raw, total, err := e.cat.readRows(ctx, t, start, maxPageRows)
		if err != nil {
			return nil, err
		}
		for _, b := range raw {
			var row map[string]any
			if err := json.Unmarshal(b, &row); err != nil {
				return nil, fmt.Errorf("decoding stored row of %s: %w", k, err)
			}
			typed, err := typedRecord(fields, row)
			if err != nil {
				return nil, fmt.Errorf("decoding stored row of %s: %w", k, err)
			}
			out = append(out, typed)
		}
		start += int64(len(raw))
		if len(raw) == 0 || start >= total {
			return out, nil
		}
	}
}

func typedRecord(fields []*bq.TableFieldSchema, row map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		v := row[f.Name]
		if v == nil {
			out[f.Name] = nil
			continue
		}
		if f.Mode == modeRepeated {
			list, _ := v.([]any)
			vals := make([]any, len(list))
			for i, x := range list {
				tv, err := typedValue(f, x)
				if err != nil {
					return nil, err
				}
				vals[i] = tv
			}
			out[f.Name] = vals
			continue
		}
		tv, err := typedValue(f, v)
		if err != nil {
			return nil, err
		}
		out[f.Name] = tv
	}
	return out, nil
}

func typedValue(f *bq.TableFieldSchema, v any) (any, error) {
	if f.Type == typeRecord {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("column %s: stored RECORD is %T", f.Name, v)
		}
		return typedRecord(f.Fields, m)
	}
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("column %s: stored value is %T", f.Name, v)
	}
	var (
		out any
		err error
	)
	switch f.Type {
	case typeBytes:
		out, err = base64.StdEncoding.DecodeString(s)
	case typeInteger:
		out, err = strconv.ParseInt(s, 10, 64)
	case typeFloat:
		out, err = strconv.ParseFloat(s, 64)
	case typeBoolean:
		out, err = strconv.ParseBool(s)
	case typeTimestamp:
		var us int64
		us, err = strconv.ParseInt(s, 10, 64)
		out = time.UnixMicro(us).UTC()
	case typeDate:
		out, err = civil.ParseDate(s)
	case typeTime:
		out, err = civil.ParseTime(s)
	case typeDatetime:
		out, err = civil.ParseDateTime(s)
	case typeNumeric, typeBigNumeric:
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			err = fmt.Errorf("invalid %s %q", f.Type, s)
		}
		out = r
	default:
		out = s
	}
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", f.Name, err)
	}
	return out, nil
}
