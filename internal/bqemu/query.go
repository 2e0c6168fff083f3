package bqemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/grpc/codes"
)

// maxOffsetQuery is the one query shape jobs.query answers: the highest
// value of a column per group, over the rows whose key column equals a
// named parameter. It is what the BigQuery sink asks in exactly-once mode
// to learn the last Kafka offset committed per partition of a topic:
//
//	SELECT _sluice_partition, MAX(_sluice_offset) FROM `p.d.t`
//	WHERE _sluice_topic = @topic GROUP BY _sluice_partition
//
// The emulator is no SQL engine: any other statement is refused with
// BigQuery's invalidQuery error, naming what is emulated.
var maxOffsetQuery = regexp.MustCompile(`(?is)^\s*SELECT\s+(\w+)\s*,\s*MAX\s*\(\s*(\w+)\s*\)\s+FROM\s+` +
	"`([^`]+)`" + `\s+WHERE\s+(\w+)\s*=\s*@(\w+)\s+GROUP\s+BY\s+(\w+)\s*;?\s*$`)

// query serves jobs.query (POST /projects/{project}/queries) for
// maxOffsetQuery, always complete in the first response, as BigQuery
// answers a small query within timeoutMs. Only committed rows are seen:
// those of PENDING streams stay invisible until BatchCommitWriteStreams.
func (e *Emulator) query(w http.ResponseWriter, r *http.Request) {
	var in bq.QueryRequest
	if err := decodeBody(r, &in); err != nil {
		writeError(w, err)
		return
	}
	if in.UseLegacySql != nil && *in.UseLegacySql {
		writeError(w, invalidQueryf("bqemu emulates standard SQL only; set useLegacySql: false"))
		return
	}
	m := maxOffsetQuery.FindStringSubmatch(in.Query)
	if m == nil {
		writeError(w, invalidQueryf("bqemu answers only SELECT g, MAX(c) FROM `project.dataset.table` WHERE k = @param GROUP BY g; got %q", in.Query))
		return
	}
	groupCol, maxCol, ref, keyCol, param, groupBy := m[1], m[2], m[3], m[4], m[5], m[6]
	if !strings.EqualFold(groupCol, groupBy) {
		writeError(w, invalidQueryf("SELECT list expression references column %s which is neither grouped nor aggregated", groupCol))
		return
	}
	k, ok := parseTableRef(ref, r.PathValue("project"))
	if !ok {
		writeError(w, invalidQueryf("Invalid table name: `%s`", ref))
		return
	}
	var want *string
	for _, p := range in.QueryParameters {
		if p.Name == param && p.ParameterValue != nil {
			v := p.ParameterValue.Value
			want = &v
		}
	}
	if want == nil {
		writeError(w, invalidQueryf("Query parameter '%s' not found", param))
		return
	}
	t, err := e.cat.table(k)
	if err != nil {
		writeError(w, err)
		return
	}
	fields, _ := t.schema()
	for _, c := range []string{groupCol, maxCol, keyCol} {
		if findField(fields, c) == nil {
			writeError(w, invalidQueryf("Unrecognized name: %s", c))
			return
		}
	}
	groups, err := e.maxPerGroup(r, t, fields, groupCol, maxCol, keyCol, *want)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := queryResponse(k.project, e.location, findField(fields, groupCol), findField(fields, maxCol), groups)
	e.results.put(resp)
	writeJSON(w, http.StatusOK, resp)
}

// getQueryResults serves jobs.getQueryResults for the queries answered
// lately; Google's client asks it when a jobs.query answer has no rows.
func (e *Emulator) getQueryResults(w http.ResponseWriter, r *http.Request) {
	resp := e.results.get(r.PathValue("job"))
	if resp == nil {
		writeError(w, notFoundf("Job %s:%s", r.PathValue("project"), r.PathValue("job")))
		return
	}
	writeJSON(w, http.StatusOK, &bq.GetQueryResultsResponse{
		Kind: "bigquery#getQueryResultsResponse", JobComplete: true, JobReference: resp.JobReference,
		Schema: resp.Schema, Rows: resp.Rows, TotalRows: resp.TotalRows,
		ForceSendFields: []string{"TotalRows", "JobComplete"},
	})
}

// maxQueryResults bounds the query results kept for getQueryResults.
const maxQueryResults = 1000

// queryResults keeps the latest query answers by job id.
type queryResults struct {
	mu    sync.Mutex
	m     map[string]*bq.QueryResponse
	order []string
}

func (q *queryResults) put(resp *bq.QueryResponse) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m == nil {
		q.m = map[string]*bq.QueryResponse{}
	}
	id := resp.JobReference.JobId
	q.m[id] = resp
	q.order = append(q.order, id)
	if len(q.order) > maxQueryResults {
		delete(q.m, q.order[0])
		q.order = q.order[1:]
	}
}

func (q *queryResults) get(id string) *bq.QueryResponse {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.m[id]
}

// maxPerGroup scans the committed rows of t.
func (e *Emulator) maxPerGroup(r *http.Request, t *tableState, fields []*bq.TableFieldSchema, groupCol, maxCol, keyCol, want string) (map[string]any, error) {
	groups := map[string]any{} // group value as text -> max
	for start := int64(0); ; {
		raw, total, err := e.cat.readRows(r.Context(), t, start, maxPageRows)
		if err != nil {
			return nil, err
		}
		for _, b := range raw {
			var row map[string]any
			if err := json.Unmarshal(b, &row); err != nil {
				return nil, fmt.Errorf("decoding stored row of %s: %w", t.key, err)
			}
			typed, err := typedRecord(fields, row)
			if err != nil {
				return nil, fmt.Errorf("decoding stored row of %s: %w", t.key, err)
			}
			if fmt.Sprint(columnValue(typed, keyCol)) != want || columnValue(typed, keyCol) == nil {
				continue
			}
			g := fmt.Sprint(columnValue(typed, groupCol))
			v := columnValue(typed, maxCol)
			if cur, ok := groups[g]; !ok || cur == nil || (v != nil && less(cur, v)) {
				groups[g] = v
			}
		}
		start += int64(len(raw))
		if len(raw) == 0 || start >= total {
			return groups, nil
		}
	}
}

// columnValue finds a column case-insensitively, as BigQuery names do.
func columnValue(row map[string]any, name string) any {
	if v, ok := row[name]; ok {
		return v
	}
	for k, v := range row {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

func less(a, b any) bool {
	switch a := a.(type) {
	case int64:
		bi, ok := b.(int64)
		return ok && a < bi
	case float64:
		bf, ok := b.(float64)
		return ok && a < bf
	}
	return fmt.Sprint(a) < fmt.Sprint(b)
}

func queryResponse(project, location string, groupField, maxField *bq.TableFieldSchema, groups map[string]any) *bq.QueryResponse {
	var id [8]byte
	rand.Read(id[:])
	keys := make([]string, 0, len(groups))
	for g := range groups {
		keys = append(keys, g)
	}
	sort.Strings(keys)
	resp := &bq.QueryResponse{
		Kind:         "bigquery#queryResponse",
		JobComplete:  true,
		JobReference: &bq.JobReference{ProjectId: project, JobId: "bqemu_" + hex.EncodeToString(id[:]), Location: location},
		Schema: &bq.TableSchema{Fields: []*bq.TableFieldSchema{
			{Name: groupField.Name, Type: groupField.Type, Mode: "NULLABLE"},
			{Name: "f0_", Type: maxField.Type, Mode: "NULLABLE"},
		}},
		TotalRows:       uint64(len(keys)),
		ForceSendFields: []string{"TotalRows", "JobComplete"},
	}
	for _, g := range keys {
		var mx any
		if v := groups[g]; v != nil {
			mx = restScalar(v)
		}
		resp.Rows = append(resp.Rows, &bq.TableRow{F: []*bq.TableCell{{V: g}, {V: mx}}})
	}
	return resp
}

// restScalar renders a scalar as BigQuery's REST rows do: as a string.
func restScalar(v any) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// parseTableRef reads project.dataset.table (or dataset.table in the
// request's project); a project may itself hold dots (example.com:p).
func parseTableRef(ref, project string) (tableKey, bool) {
	parts := strings.Split(ref, ".")
	switch {
	case len(parts) == 2:
		return tableKey{project, parts[0], parts[1]}, parts[0] != "" && parts[1] != ""
	case len(parts) >= 3:
		n := len(parts)
		k := tableKey{strings.Join(parts[:n-2], "."), parts[n-2], parts[n-1]}
		return k, k.project != "" && k.dataset != "" && k.table != ""
	}
	return tableKey{}, false
}

func invalidQueryf(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "invalidQuery", codes.InvalidArgument, fmt.Sprintf(format, args...)}
}
