package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

const (
	userV1 = `{"type":"record","name":"User","namespace":"t","fields":[{"name":"id","type":"int"}]}`
	// userV2 adds a field with a default: BACKWARD compatible.
	userV2 = `{"type":"record","name":"User","namespace":"t","fields":[{"name":"id","type":"int"},{"name":"email","type":["null","string"],"default":null}]}`
	// userBad adds a field without a default: not BACKWARD compatible.
	userBad = `{"type":"record","name":"User","namespace":"t","fields":[{"name":"id","type":"int"},{"name":"name","type":"string"}]}`
)

type client struct {
	t   *testing.T
	url string
}

func newServer(t *testing.T, dir string) (*Server, client) {
	t.Helper()
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, client{t, ts.URL}
}

// call sends a request and decodes the JSON answer into out (when not
// nil); it checks Confluent's content type and returns the status.
func (c client) call(method, path string, body any, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != contentType {
		c.t.Errorf("%s %s: Content-Type %q, want %q", method, path, ct, contentType)
	}
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type errorBody struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

// wantError checks a call fails with Confluent's error shape.
func (c client) wantError(method, path string, body any, status, code int, msgPart string) {
	c.t.Helper()
	var e errorBody
	got := c.call(method, path, body, &e)
	if got != status || e.Code != code || !strings.Contains(e.Message, msgPart) {
		c.t.Errorf("%s %s = %d %+v, want %d error_code %d mentioning %q", method, path, got, e, status, code, msgPart)
	}
}

func (c client) register(subject, schema string) int {
	c.t.Helper()
	var out struct{ ID int }
	if st := c.call("POST", "/subjects/"+subject+"/versions", map[string]any{"schema": schema}, &out); st != 200 {
		c.t.Fatalf("registering under %s: status %d", subject, st)
	}
	return out.ID
}

func TestRegisterIsIdempotentAndSharesIDs(t *testing.T) {
	_, c := newServer(t, "")
	id1 := c.register("users-value", userV1)
	spaced := strings.ReplaceAll(userV1, ",", " ,\n ")
	if id := c.register("users-value", spaced); id != id1 {
		t.Errorf("re-registering the same schema (other whitespace) gave id %d, want %d", id, id1)
	}
	var versions []int
	c.call("GET", "/subjects/users-value/versions", nil, &versions)
	if !slices.Equal(versions, []int{1}) {
		t.Errorf("versions = %v, want [1]: registering twice must not add a version", versions)
	}
	if id := c.register("other-value", userV1); id != id1 {
		t.Errorf("the same schema under another subject got id %d, want %d", id, id1)
	}
	if id := c.register("users-value", userV2); id == id1 {
		t.Errorf("a new schema reused id %d", id)
	}
	// Schemas differing only in a default are different schemas.
	withDefault := `{"type":"record","name":"User","namespace":"t","fields":[{"name":"id","type":"int","default":7}]}`
	if id := c.register("other-value", withDefault); id == id1 {
		t.Errorf("a schema differing in a default reused id %d", id)
	}
	var subjects []string
	c.call("GET", "/subjects", nil, &subjects)
	if !slices.Equal(subjects, []string{"other-value", "users-value"}) {
		t.Errorf("subjects = %v", subjects)
	}
}

func TestSchemaAndSubjectEndpoints(t *testing.T) {
	_, c := newServer(t, "")
	id1 := c.register("users-value", userV1)
	id2 := c.register("users-value", userV2)

	var byID struct {
		Schema     string `json:"schema"`
		SchemaType string `json:"schemaType"`
	}
	c.call("GET", "/schemas/ids/"+itoa(id2), nil, &byID)
	if byID.Schema != userV2 || byID.SchemaType != "" {
		t.Errorf("GET /schemas/ids/%d = %+v", id2, byID)
	}
	var raw map[string]any
	c.call("GET", "/schemas/ids/"+itoa(id1)+"/schema", nil, &raw)
	if raw["name"] != "User" {
		t.Errorf("raw schema = %v", raw)
	}
	var usage []map[string]any
	c.call("GET", "/schemas/ids/"+itoa(id1)+"/versions", nil, &usage)
	if len(usage) != 1 || usage[0]["subject"] != "users-value" || usage[0]["version"] != 1.0 {
		t.Errorf("usage = %v", usage)
	}
	var subjectsByID []string
	c.call("GET", "/schemas/ids/"+itoa(id1)+"/subjects", nil, &subjectsByID)
	if !slices.Equal(subjectsByID, []string{"users-value"}) {
		t.Errorf("subjects by id = %v", subjectsByID)
	}
	c.wantError("GET", "/schemas/ids/999", nil, 404, 40403, "Schema 999 not found")

	type subjectVersion struct {
		Subject string `json:"subject"`
		Version int    `json:"version"`
		ID      int    `json:"id"`
		Schema  string `json:"schema"`
	}
	for path, want := range map[string]subjectVersion{
		"/subjects/users-value/versions/1":      {"users-value", 1, id1, userV1},
		"/subjects/users-value/versions/latest": {"users-value", 2, id2, userV2},
		"/subjects/users-value/versions/-1":     {"users-value", 2, id2, userV2},
	} {
		var got subjectVersion
		c.call("GET", path, nil, &got)
		if got != want {
			t.Errorf("GET %s = %+v, want %+v", path, got, want)
		}
	}
	c.call("GET", "/subjects/users-value/versions/2/schema", nil, &raw)
	if len(raw["fields"].([]any)) != 2 {
		t.Errorf("raw version 2 = %v", raw)
	}
	c.wantError("GET", "/subjects/nobody/versions", nil, 404, 40401, "Subject 'nobody' not found")
	c.wantError("GET", "/subjects/users-value/versions/7", nil, 404, 40402, "Version 7 not found")
	c.wantError("GET", "/subjects/users-value/versions/zero", nil, 422, 42202, "not a valid version")
	c.wantError("GET", "/subjects/users-value/versions/0", nil, 422, 42202, "not a valid version")

	// Lookup.
	var found subjectVersion
	c.call("POST", "/subjects/users-value", map[string]any{"schema": userV1}, &found)
	if found.ID != id1 || found.Version != 1 || found.Subject != "users-value" {
		t.Errorf("lookup = %+v", found)
	}
	c.wantError("POST", "/subjects/users-value", map[string]any{"schema": userBad}, 404, 40403, "Schema not found")
	c.wantError("POST", "/subjects/nobody", map[string]any{"schema": userV1}, 404, 40401, "not found")
	c.wantError("POST", "/subjects/users-value/versions", map[string]any{"schema": `{"type":"record"`}, 422, 42201, "Invalid schema")
	c.wantError("POST", "/subjects/users-value/versions", map[string]any{"schema": `{"type":"enum","name":"E"}`}, 422, 42201, "Invalid schema")
	c.wantError("POST", "/subjects/users-value/versions", map[string]any{"schema": "x", "schemaType": "PROTOBUF"}, 422, 42201, "not supported")

	// Soft and permanent deletes.
	var deletedVersion int
	c.call("DELETE", "/subjects/users-value/versions/2", nil, &deletedVersion)
	var versions []int
	c.call("GET", "/subjects/users-value/versions", nil, &versions)
	if deletedVersion != 2 || !slices.Equal(versions, []int{1}) {
		t.Errorf("after deleting version 2: deleted %d, versions %v", deletedVersion, versions)
	}
	c.call("GET", "/subjects/users-value/versions?deleted=true", nil, &versions)
	if !slices.Equal(versions, []int{1, 2}) {
		t.Errorf("versions?deleted=true = %v", versions)
	}
	c.call("GET", "/schemas/ids/"+itoa(id2), nil, &byID) // still readable by id
	if byID.Schema != userV2 {
		t.Errorf("a deleted version's schema is no longer readable by id")
	}
	c.wantError("DELETE", "/subjects/users-value?permanent=true", nil, 404, 40405, "was not deleted first")
	var deleted []int
	c.call("DELETE", "/subjects/users-value", nil, &deleted)
	if !slices.Equal(deleted, []int{1}) {
		t.Errorf("DELETE subject = %v, want [1]", deleted)
	}
	c.wantError("GET", "/subjects/users-value/versions", nil, 404, 40401, "not found")
	c.call("DELETE", "/subjects/users-value?permanent=true", nil, &deleted)
	if !slices.Equal(deleted, []int{1, 2}) {
		t.Errorf("permanent DELETE = %v, want [1 2]", deleted)
	}
	var subjects []string
	c.call("GET", "/subjects?deleted=true", nil, &subjects)
	if len(subjects) != 0 {
		t.Errorf("subjects after permanent delete = %v", subjects)
	}
	c.wantError("DELETE", "/subjects/users-value", nil, 404, 40401, "not found")
}

func TestJSONSchemasAreStored(t *testing.T) {
	_, c := newServer(t, "")
	schema := `{"type":"object","properties":{"a":{"type":"integer"}}}`
	var out struct{ ID int }
	c.call("POST", "/subjects/j-value/versions", map[string]any{"schema": schema, "schemaType": "JSON"}, &out)
	var got struct {
		Schema     string `json:"schema"`
		SchemaType string `json:"schemaType"`
	}
	c.call("GET", "/schemas/ids/"+itoa(out.ID), nil, &got)
	if got.Schema != schema || got.SchemaType != "JSON" {
		t.Errorf("JSON schema = %+v", got)
	}
	c.wantError("POST", "/subjects/j-value/versions", map[string]any{"schema": "{not json", "schemaType": "JSON"}, 422, 42201, "not JSON")
	var types []string
	c.call("GET", "/schemas/types", nil, &types)
	if !slices.Contains(types, "AVRO") || !slices.Contains(types, "JSON") {
		t.Errorf("types = %v", types)
	}
}

func TestCompatibilityLevels(t *testing.T) {
	_, c := newServer(t, "")
	var cfg map[string]string
	c.call("GET", "/config", nil, &cfg)
	if cfg["compatibilityLevel"] != "BACKWARD" {
		t.Errorf("default level = %v, want BACKWARD", cfg)
	}
	c.register("u-value", userV1)
	c.wantError("POST", "/subjects/u-value/versions", map[string]any{"schema": userBad}, 409, 409,
		`Schema being registered is incompatible with an earlier schema for subject "u-value"`)
	var e errorBody
	c.call("POST", "/subjects/u-value/versions", map[string]any{"schema": userBad}, &e)
	if !strings.Contains(e.Message, "name") || !strings.Contains(e.Message, "version 1") {
		t.Errorf("409 message %q should name the field and the version", e.Message)
	}

	var compat struct {
		Is       bool     `json:"is_compatible"`
		Messages []string `json:"messages"`
	}
	c.call("POST", "/compatibility/subjects/u-value/versions/latest", map[string]any{"schema": userBad}, &compat)
	if compat.Is || len(compat.Messages) == 0 {
		t.Errorf("compatibility of userBad = %+v, want false with messages", compat)
	}
	c.call("POST", "/compatibility/subjects/u-value/versions/1", map[string]any{"schema": userV2}, &compat)
	if !compat.Is {
		t.Errorf("compatibility of userV2 = %+v, want true", compat)
	}
	c.call("POST", "/compatibility/subjects/u-value/versions", map[string]any{"schema": userV2}, &compat)
	if !compat.Is {
		t.Errorf("compatibility of userV2 against all = %+v", compat)
	}
	c.wantError("POST", "/compatibility/subjects/none-value/versions/latest", map[string]any{"schema": userV2}, 404, 40401, "not found")

	// Subject-level config.
	c.wantError("GET", "/config/u-value", nil, 404, 40408, "does not have subject-level compatibility")
	c.call("GET", "/config/u-value?defaultToGlobal=true", nil, &cfg)
	if cfg["compatibilityLevel"] != "BACKWARD" {
		t.Errorf("defaultToGlobal = %v", cfg)
	}
	c.call("PUT", "/config/u-value", map[string]string{"compatibility": "none"}, &cfg)
	if cfg["compatibility"] != "NONE" {
		t.Errorf("PUT /config/u-value = %v", cfg)
	}
	if id := c.register("u-value", userBad); id == 0 {
		t.Error("NONE should accept any schema")
	}
	c.call("DELETE", "/config/u-value", nil, &cfg)
	if cfg["compatibility"] != "NONE" {
		t.Errorf("DELETE /config/u-value = %v, want the old level", cfg)
	}
	c.wantError("PUT", "/config", map[string]string{"compatibility": "SOMETIMES"}, 422, 42203, "Invalid compatibility level")
	c.call("PUT", "/config", map[string]string{"compatibility": "FULL"}, &cfg)
	c.call("GET", "/config", nil, &cfg)
	if cfg["compatibilityLevel"] != "FULL" {
		t.Errorf("global level = %v, want FULL", cfg)
	}
}

func TestTransitiveCompatibilityChecksEveryVersion(t *testing.T) {
	v1 := `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`
	v2 := `{"type":"record","name":"R","fields":[]}`
	// v3 reads v2 data (a defaults) but not v1 data (a was a string).
	v3 := `{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":0}]}`
	for level, accepted := range map[string]bool{"BACKWARD": true, "BACKWARD_TRANSITIVE": false} {
		_, c := newServer(t, "")
		c.call("PUT", "/config", map[string]string{"compatibility": level}, nil)
		c.register("r", v1)
		c.register("r", v2)
		var e errorBody
		status := c.call("POST", "/subjects/r/versions", map[string]any{"schema": v3}, &e)
		if (status == 200) != accepted {
			t.Errorf("%s: registering v3 = %d %+v, want accepted=%v", level, status, e, accepted)
		}
	}
}

func TestForwardAndFull(t *testing.T) {
	// Adding a field without a default: a FORWARD change (old readers
	// ignore it), not a BACKWARD one.
	for level, accepted := range map[string]bool{"FORWARD": true, "FULL": false, "NONE": true} {
		_, c := newServer(t, "")
		c.call("PUT", "/config", map[string]string{"compatibility": level}, nil)
		c.register("u", userV1)
		status := c.call("POST", "/subjects/u/versions", map[string]any{"schema": userBad}, nil)
		if (status == 200) != accepted {
			t.Errorf("%s: status %d, want accepted=%v", level, status, accepted)
		}
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	_, c := newServer(t, dir)
	id1 := c.register("a-value", userV1)
	id2 := c.register("a-value", userV2)
	c.call("PUT", "/config/a-value", map[string]string{"compatibility": "FULL"}, nil)
	c.call("DELETE", "/subjects/a-value/versions/1", nil, nil)

	_, again := newServer(t, dir) // a new server on the same directory
	var got struct {
		ID      int    `json:"id"`
		Version int    `json:"version"`
		Schema  string `json:"schema"`
	}
	again.call("GET", "/subjects/a-value/versions/latest", nil, &got)
	if got.ID != id2 || got.Version != 2 || got.Schema != userV2 {
		t.Errorf("after restart latest = %+v", got)
	}
	var versions []int
	again.call("GET", "/subjects/a-value/versions", nil, &versions)
	if !slices.Equal(versions, []int{2}) {
		t.Errorf("after restart versions = %v, want [2] (1 was deleted)", versions)
	}
	var cfg map[string]string
	again.call("GET", "/config/a-value", nil, &cfg)
	if cfg["compatibilityLevel"] != "FULL" {
		t.Errorf("after restart config = %v", cfg)
	}
	if id := again.register("a-value", userV1); id != id1 {
		t.Errorf("after restart the same schema got id %d, want %d", id, id1)
	}
	if id := again.register("b-value", `{"type":"string"}`); id <= id2 {
		t.Errorf("after restart a new schema got id %d, want > %d", id, id2)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != stateFile {
		t.Errorf("directory holds %v, want only %s (no temp files)", entries, stateFile)
	}
}

func TestFailedSaveChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "registry")
	_, c := newServer(t, dir)
	c.register("a-value", userV1)
	if err := os.RemoveAll(dir); err != nil { // saving now fails, even as root
		t.Fatal(err)
	}
	c.wantError("POST", "/subjects/a-value/versions", map[string]any{"schema": userV2}, 500, 50001, "saving")
	var versions []int
	c.call("GET", "/subjects/a-value/versions", nil, &versions)
	if !slices.Equal(versions, []int{1}) {
		t.Errorf("versions after a failed save = %v, want [1]", versions)
	}
}

func TestFranzGoClientRoundTrip(t *testing.T) {
	_, c := newServer(t, t.TempDir())
	ctx := context.Background()
	cl, err := sr.NewClient(sr.URLs(c.url))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: userV1})
	if err != nil {
		t.Fatal(err)
	}
	if ss.Subject != "orders-value" || ss.Version != 1 || ss.ID == 0 {
		t.Errorf("CreateSchema = %+v", ss)
	}
	id2, err := cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: userV2}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cl.SchemaByID(ctx, id2)
	if err != nil || s.Schema != userV2 || s.Type != sr.TypeAvro {
		t.Errorf("SchemaByID = %+v, %v", s, err)
	}
	if text, err := cl.SchemaTextByID(ctx, id2); err != nil || !strings.Contains(text, "email") {
		t.Errorf("SchemaTextByID = %q, %v", text, err)
	}
	latest, err := cl.SchemaByVersion(ctx, "orders-value", -1)
	if err != nil || latest.Version != 2 || latest.ID != id2 {
		t.Errorf("SchemaByVersion(latest) = %+v, %v", latest, err)
	}
	if subjects, err := cl.Subjects(ctx); err != nil || !slices.Equal(subjects, []string{"orders-value"}) {
		t.Errorf("Subjects = %v, %v", subjects, err)
	}
	if versions, err := cl.SubjectVersions(ctx, "orders-value"); err != nil || !slices.Equal(versions, []int{1, 2}) {
		t.Errorf("SubjectVersions = %v, %v", versions, err)
	}
	found, err := cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: userV1})
	if err != nil || found.ID != ss.ID || found.Version != 1 {
		t.Errorf("LookupSchema = %+v, %v", found, err)
	}
	check, err := cl.CheckCompatibility(ctx, "orders-value", -1, sr.Schema{Schema: userBad})
	if err != nil || check.Is {
		t.Errorf("CheckCompatibility(userBad) = %+v, %v", check, err)
	}
	_, err = cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: userBad}, -1, -1)
	var re *sr.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 409 || re.ErrorCode != 409 {
		t.Errorf("registering an incompatible schema = %v, want a 409 ResponseError", err)
	}
	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "orders-value")
	if set[0].Err != nil || set[0].Level != sr.CompatFull {
		t.Errorf("SetCompatibility = %+v", set[0])
	}
	got := cl.Compatibility(ctx, "orders-value")
	if got[0].Err != nil || got[0].Level != sr.CompatFull {
		t.Errorf("Compatibility = %+v", got[0])
	}
	global := cl.Compatibility(ctx)
	if global[0].Err != nil || global[0].Level != sr.CompatBackward {
		t.Errorf("global Compatibility = %+v", global[0])
	}
	if _, err := cl.SchemaByID(ctx, 12345); !errors.As(err, &re) || re.ErrorCode != 40403 {
		t.Errorf("SchemaByID(unknown) = %v, want error_code 40403", err)
	}
	if _, err := cl.SchemaByVersion(ctx, "nope", 1); !errors.As(err, &re) || re.ErrorCode != 40401 {
		t.Errorf("SchemaByVersion(unknown subject) = %v, want error_code 40401", err)
	}
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	deleted, err := cl.DeleteSubject(ctx, "orders-value", sr.SoftDelete)
	if err != nil || !slices.Equal(deleted, []int{2}) {
		t.Errorf("DeleteSubject(soft) = %v, %v", deleted, err)
	}
	deleted, err = cl.DeleteSubject(ctx, "orders-value", sr.HardDelete)
	if err != nil || !slices.Equal(deleted, []int{1, 2}) {
		t.Errorf("DeleteSubject(hard) = %v, %v", deleted, err)
	}
	if types, err := cl.SupportedTypes(ctx); err != nil || len(types) != 2 {
		t.Errorf("SupportedTypes = %v, %v", types, err)
	}
}

func TestStartServesUntilCancelled(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run, err := s.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(run.URL() + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /subjects = %d", resp.StatusCode)
	}
	if _, err := s.Start(context.Background(), run.Addr()); err == nil {
		t.Error("a second Start on a used address succeeded")
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Wait = %v, want nil after a clean shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop after its context was cancelled")
	}
	if _, err := http.Get(run.URL() + "/subjects"); err == nil {
		t.Error("the server still answers after shutdown")
	}
}

func TestCorruptStateFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), stateFile) {
		t.Errorf("New on a corrupt state file = %v, want an error naming the file", err)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
