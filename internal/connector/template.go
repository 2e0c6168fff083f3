package connector

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// NameTemplate renders names (topics, table names) from a record:
// `.Topic`, `.Partition`, `.Offset`, `.Key`, `.Timestamp`, `.Headers`
// (map of string values), `.Value` (the decoded fields, e.g.
// `{{.Value.kind}}`) and `.Schema` (`{{.Schema.Name}}`, the Avro record's
// full name). A template without `{{` is a constant and costs nothing.
type NameTemplate struct {
	text      string
	const_    bool
	topicOnly bool // exactly {{.Topic}}: rendered without the template engine
	tmpl      *template.Template
}

// ParseNameTemplate parses text; missing fields are errors, not "<no value>".
func ParseNameTemplate(name, text string) (*NameTemplate, error) {
	if !strings.Contains(text, "{{") {
		return &NameTemplate{text: text, const_: true}, nil
	}
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parsing template %s: %w", name, err)
	}
	inner, ok := strings.CutPrefix(text, "{{")
	inner, ok2 := strings.CutSuffix(inner, "}}")
	topicOnly := ok && ok2 && strings.TrimSpace(inner) == ".Topic"
	return &NameTemplate{text: text, tmpl: t, topicOnly: topicOnly}, nil
}

// IsConstant reports whether the template renders the same for every record.
func (t *NameTemplate) IsConstant() bool { return t.const_ }

func (t *NameTemplate) String() string { return t.text }

type templateData struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Timestamp time.Time
	Headers   map[string]string
	Value     map[string]any
	Schema    *Schema
}

// Render returns the name for rec. An error names the template and record,
// and is a *RecordError: the record lacks what the template needs.
func (t *NameTemplate) Render(rec *Record) (string, error) {
	if t.const_ {
		return t.text, nil
	}
	if t.topicOnly && rec.Topic != "" && !strings.Contains(rec.Topic, "<no value>") {
		return rec.Topic, nil // what the template renders, without its cost
	}
	d := templateData{
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Key: string(rec.Key), Timestamp: rec.Timestamp, Value: rec.Fields, Schema: rec.Schema,
	}
	if len(rec.Headers) > 0 {
		d.Headers = make(map[string]string, len(rec.Headers))
		for _, h := range rec.Headers {
			d.Headers[h.Key] = string(h.Value)
		}
	}
	if d.Schema == nil {
		d.Schema = &Schema{}
	}
	var buf bytes.Buffer
	if err := t.tmpl.Execute(&buf, d); err != nil {
		return "", &RecordError{Record: rec, Reason: "template", Err: fmt.Errorf("rendering %q: %w", t.text, err)}
	}
	out := buf.String()
	if out == "" || strings.Contains(out, "<no value>") {
		return "", &RecordError{Record: rec, Reason: "template", Err: fmt.Errorf("rendering %q: the record has no value for it", t.text)}
	}
	return out, nil
}
