package config

import (
	"strings"
	"testing"
)

func TestAdminAllowedHostsAndMaxConsumers(t *testing.T) {
	const base = `
name: p
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
sink: {file: {path: out}}
`
	f, err := Parse([]byte(base+"admin: {listen: 127.0.0.1:8080, allowed_hosts: [sluice.internal], max_consumers: 10}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a := f.Admin; len(a.AllowedHosts) != 1 || a.AllowedHosts[0] != "sluice.internal" || a.MaxConsumers != 10 {
		t.Fatalf("admin = %+v", a)
	}
	_, err = Parse([]byte(base+"admin: {allowed_hosts: ['http://x/'], max_consumers: -1}\n"), noEnv)
	for _, want := range []string{`admin.allowed_hosts[0]: "http://x/" is not a host name`, "admin.max_consumers: must be between 1 and 256"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}
