package config

import (
	"strings"
	"testing"
)

// Pipeline files and the values of environment variables are input from
// users and their deployment tooling: loading must never panic, and what
// it accepts can always be printed.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good), "x")
	f.Add([]byte(envMySQLFile), "ab #cd")
	f.Add([]byte("name: ${A:?need A}\n"), "")
	f.Add([]byte("pipelines:\n  - &p {name: a}\n  - *p\n"), "")
	f.Add([]byte("name: ${UNSET\n"), "t], group: x")
	f.Add([]byte("name: x\nsource:\n  kafka:\n    brokers: [b]\n      group: g\n   - c\n"), "")
	f.Add([]byte("name: x\nsource: {kafka: {consumers: [1], tls: 3, start_form: x}}\nsinks: {a: {file: 2}}\n"), "")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		lookup := func(name string) (string, bool) { return env, strings.HasPrefix(name, "S") }
		file, err := Parse(data, lookup)
		if err != nil {
			if _, ok := err.(Problems); !ok {
				t.Fatalf("error %T is not Problems: %v", err, err)
			}
			return
		}
		_ = file.YAML()
	})
}

func FuzzRedactDSN(f *testing.F) {
	for _, s := range []string{
		"root:MY@SECRET2@tcp(127.0.0.1:3306)/test", "root:pw@/test", "postgresql://u:PG#SECRET@h/db",
		"host=db password='a b' user=u", `password=p\`, "postgres://u@h/db?password=x",
	} {
		f.Add(DriverMySQL, s)
		f.Add(DriverPostgres, s)
	}
	f.Fuzz(func(t *testing.T, driver, dsn string) {
		got := RedactDSN(driver, dsn)
		if strings.Contains(got, placeholder) {
			t.Fatalf("RedactDSN(%q, %q) = %q shows the placeholder", driver, dsn, got)
		}
	})
}
