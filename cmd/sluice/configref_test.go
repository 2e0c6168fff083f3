package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigDocsAndSchemaPrintTheReference(t *testing.T) {
	out, _, err := runCLI(t, "config", "docs")
	if err != nil || !strings.Contains(out, "## `sink.postgres`") || !strings.Contains(out, "| `writers` |") {
		t.Fatalf("config docs: %v\n%.500s", err, out)
	}
	out, _, err = runCLI(t, "config", "schema")
	var schema struct {
		Schema      string         `json:"$schema"`
		Definitions map[string]any `json:"definitions"`
	}
	if err != nil || json.Unmarshal([]byte(out), &schema) != nil || schema.Definitions["SQLSink"] == nil {
		t.Fatalf("config schema: %v\n%.500s", err, out)
	}
	out, _, err = runCLI(t, "config", "schema", "--help")
	if err != nil || !strings.Contains(out, "# yaml-language-server: $schema=") {
		t.Fatalf("config schema --help: %v\n%s", err, out)
	}
}

// TestValidatePrintShowsTheWritersTheSinkRuns: the README says writers
// default to 2; validate --print said 0.
func TestValidatePrintShowsTheWritersTheSinkRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte(`
name: x
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
sink: {postgres: {dsn: "postgres://u:pw@h/d", table: t}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "validate", "--print", path)
	if err != nil || !strings.Contains(out, "writers: 2") || strings.Contains(out, ":pw@") {
		t.Fatalf("validate --print: %v\n%s", err, out)
	}
}
