package main

import "testing"

// TestAutoCreateTopicsIsOnForTheDemoOnly: the demo's broker creates the
// topics its pipeline file's sinks ask for; `sluice dev` does so with
// --auto-create-topics.
func TestAutoCreateTopicsIsOnForTheDemoOnly(t *testing.T) {
	g := &globalFlags{}
	for _, tc := range []struct {
		name string
		def  string
	}{{"dev", "false"}, {"demo", "true"}} {
		cmd := newDevCommand(g)
		if tc.name == "demo" {
			cmd = newDemoCommand(g)
		}
		f := cmd.Flags().Lookup("auto-create-topics")
		if f == nil || f.DefValue != tc.def {
			t.Fatalf("%s --auto-create-topics: flag %+v, want default %s", tc.name, f, tc.def)
		}
	}
	f := &devFlags{autoCreate: true}
	if !f.options().AutoCreateTopics {
		t.Fatal("--auto-create-topics does not reach the dev stack")
	}
}
