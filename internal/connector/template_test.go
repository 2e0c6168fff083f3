package connector

import "testing"

// A template that is only the topic renders without the template engine:
// it must render what the engine renders, errors included.
func TestNameTemplateTopicMatchesEngine(t *testing.T) {
	for _, text := range []string{"{{.Topic}}", "{{ .Topic }}", " {{.Topic}}", "{{.Topic}}_x", "{{- .Topic -}}"} {
		fast, err := ParseNameTemplate("t", text)
		if err != nil {
			t.Fatal(err)
		}
		slow := *fast
		slow.topicOnly = false
		for _, topic := range []string{"orders", "", "a.b-c"} {
			rec := &Record{Topic: topic}
			got, gotErr := fast.Render(rec)
			want, wantErr := slow.Render(rec)
			if got != want || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%q on topic %q: %q, %v; the engine renders %q, %v", text, topic, got, gotErr, want, wantErr)
			}
		}
	}
}
