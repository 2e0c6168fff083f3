package bqemu

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/grpc/codes"
)

// restBasePath is where BigQuery serves its REST API. cloud.google.com/go/
// bigquery given option.WithEndpoint("http://host:port") drops it and asks
// for /projects/..., given ".../bigquery/v2/" it keeps it: both are served.
const restBasePath = "/bigquery/v2"

// maxRequestBody bounds REST request bodies (BigQuery's own limit is 10 MB).
const maxRequestBody = 10 << 20

// RESTHandler serves BigQuery's REST API for datasets (get, insert, list,
// delete), tables (get, insert, patch, update, list, delete) and
// tabledata.list, jobs.query for one query shape (see maxOffsetQuery),
// plus the emulator's admin endpoints:
//
//	GET  /emulator/stats        Stats as JSON
//	POST /emulator/stats/reset  ResetStats
//	GET  /emulator/faults       the current Faults as JSON
//	POST /emulator/faults       replace Faults (JSON body, see Faults)
func (e *Emulator) RESTHandler() http.Handler {
	mux := http.NewServeMux()
	handle := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, h)
		mux.HandleFunc(method+" "+restBasePath+path, h)
	}
	const ds, tb = "/projects/{project}/datasets/{dataset}", "/projects/{project}/datasets/{dataset}/tables/{table}"
	handle("GET", "/projects/{project}/datasets", e.listDatasets)
	handle("POST", "/projects/{project}/datasets", e.insertDataset)
	handle("GET", ds, e.getDataset)
	handle("DELETE", ds, e.deleteDataset)
	handle("GET", ds+"/tables", e.listTables)
	handle("POST", ds+"/tables", e.insertTable)
	handle("GET", tb, e.getTable)
	handle("PATCH", tb, e.patchTable)
	handle("PUT", tb, e.patchTable)
	handle("DELETE", tb, e.deleteTable)
	handle("GET", tb+"/data", e.listTableData)
	handle("POST", "/projects/{project}/queries", e.query)
	handle("GET", "/projects/{project}/queries/{job}", e.getQueryResults)
	mux.HandleFunc("GET /emulator/stats", e.getStats)
	mux.HandleFunc("POST /emulator/stats/reset", e.resetStats)
	mux.HandleFunc("GET /emulator/faults", e.getFaults)
	mux.HandleFunc("POST /emulator/faults", e.postFaults)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusNotFound, "notFound", codes.NotFound, "Not found: URL " + r.Method + " " + r.URL.Path + " (not emulated by bqemu)"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError writes BigQuery's JSON error shape, which googleapi.Error
// decodes into Code, Message and Errors[].Reason.
func writeError(w http.ResponseWriter, err error) {
	ae := asAPIError(err)
	type item struct {
		Message string `json:"message"`
		Domain  string `json:"domain"`
		Reason  string `json:"reason"`
	}
	type body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Errors  []item `json:"errors"`
		Status  string `json:"status"`
	}
	writeJSON(w, ae.httpCode, map[string]body{"error": {
		Code: ae.httpCode, Message: ae.msg, Status: httpStatusName(ae.code),
		Errors: []item{{Message: ae.msg, Domain: "global", Reason: ae.reason}},
	}})
}

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return invalidf("Reading request body: %v", err)
	}
	if len(b) > maxRequestBody {
		return invalidf("Request body exceeds %d bytes", maxRequestBody)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return invalidf("Invalid JSON payload received. %v", err)
	}
	return nil
}

func dsKey(r *http.Request) datasetKey {
	return datasetKey{r.PathValue("project"), r.PathValue("dataset")}
}

func tblKey(r *http.Request) tableKey {
	return tableKey{r.PathValue("project"), r.PathValue("dataset"), r.PathValue("table")}
}

// page reads maxResults and pageToken (an index into the listing, as the
// emulator issues them).
func page(r *http.Request, defaultSize int) (start, size int, err error) {
	size = defaultSize
	if s := r.URL.Query().Get("maxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, invalidf("Invalid maxResults: %q", s)
		}
		if n > 0 {
			size = min(n, defaultSize)
		}
	}
	if s := r.URL.Query().Get("pageToken"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, invalidf("Invalid page token: %q", s)
		}
		start = n
	}
	return start, size, nil
}

func (e *Emulator) insertDataset(w http.ResponseWriter, r *http.Request) {
	var in bq.Dataset
	if err := decodeBody(r, &in); err != nil {
		writeError(w, err)
		return
	}
	ds, err := e.cat.insertDataset(r.Context(), r.PathValue("project"), &in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

func (e *Emulator) getDataset(w http.ResponseWriter, r *http.Request) {
	ds, err := e.cat.dataset(dsKey(r))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ds)
}

func (e *Emulator) deleteDataset(w http.ResponseWriter, r *http.Request) {
	if err := e.cat.deleteDataset(r.Context(), dsKey(r), r.URL.Query().Get("deleteContents") == "true"); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) listDatasets(w http.ResponseWriter, r *http.Request) {
	start, size, err := page(r, 1000)
	if err != nil {
		writeError(w, err)
		return
	}
	all := e.cat.listDatasets(r.PathValue("project"))
	out := &bq.DatasetList{Kind: "bigquery#datasetList"}
	for i := start; i < len(all) && i < start+size; i++ {
		ds := all[i]
		out.Datasets = append(out.Datasets, &bq.DatasetListDatasets{
			Kind: ds.Kind, Id: ds.Id, DatasetReference: ds.DatasetReference,
			Location: ds.Location, FriendlyName: ds.FriendlyName, Labels: ds.Labels,
		})
	}
	if start+size < len(all) {
		out.NextPageToken = strconv.Itoa(start + size)
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) insertTable(w http.ResponseWriter, r *http.Request) {
	var in bq.Table
	if err := decodeBody(r, &in); err != nil {
		writeError(w, err)
		return
	}
	t, err := e.cat.insertTable(r.Context(), dsKey(r), &in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (e *Emulator) getTable(w http.ResponseWriter, r *http.Request) {
	t, err := e.cat.tableResource(tblKey(r))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// patchTable serves tables.patch and tables.update. Both may only evolve
// the schema compatibly (add NULLABLE/REPEATED columns, relax REQUIRED);
// update is treated as a patch of the fields it sends.
func (e *Emulator) patchTable(w http.ResponseWriter, r *http.Request) {
	var in bq.Table
	if err := decodeBody(r, &in); err != nil {
		writeError(w, err)
		return
	}
	t, err := e.cat.patchTable(r.Context(), tblKey(r), &in, r.Header.Get("If-Match"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (e *Emulator) deleteTable(w http.ResponseWriter, r *http.Request) {
	if err := e.cat.deleteTable(r.Context(), tblKey(r)); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) listTables(w http.ResponseWriter, r *http.Request) {
	start, size, err := page(r, 1000)
	if err != nil {
		writeError(w, err)
		return
	}
	all, err := e.cat.listTables(dsKey(r))
	if err != nil {
		writeError(w, err)
		return
	}
	out := &bq.TableList{Kind: "bigquery#tableList", TotalItems: int64(len(all)), ForceSendFields: []string{"TotalItems"}}
	for i := start; i < len(all) && i < start+size; i++ {
		t := all[i]
		out.Tables = append(out.Tables, &bq.TableListTables{
			Kind: t.Kind, Id: t.Id, TableReference: t.TableReference, Type: t.Type,
			CreationTime: t.CreationTime, FriendlyName: t.FriendlyName, Labels: t.Labels,
		})
	}
	if start+size < len(all) {
		out.NextPageToken = strconv.Itoa(start + size)
	}
	writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) getStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.Stats())
}

func (e *Emulator) resetStats(w http.ResponseWriter, r *http.Request) {
	e.ResetStats()
	writeJSON(w, http.StatusOK, e.Stats())
}

func (e *Emulator) getFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.Faults())
}

func (e *Emulator) postFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := decodeBody(r, &f); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			err = invalidf("%v", err)
		}
		writeError(w, err)
		return
	}
	if err := e.SetFaults(f); err != nil {
		writeError(w, invalidf("%v", err))
		return
	}
	writeJSON(w, http.StatusOK, e.Faults())
}
