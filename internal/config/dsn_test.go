package config

import (
	"strings"
	"testing"
)

// Every DSN shape each driver accepts: the password never survives, what
// names the connection does, and what the driver cannot parse is redacted
// whole.
func TestRedactDSNByDriver(t *testing.T) {
	R := Redacted
	tests := []struct {
		driver, dsn, want string
		secret            string // must not appear in the output
	}{
		// go-sql-driver/mysql
		{DriverMySQL, "root:hunter2@tcp(127.0.0.1:3306)/test", "root:" + R + "@tcp(127.0.0.1:3306)/test", "hunter2"},
		{DriverMySQL, "root:MY@SECRET2@tcp(127.0.0.1:3306)/test", "root:" + R + "@tcp(127.0.0.1:3306)/test", "SECRET2"},
		{DriverMySQL, "root:pw@/test", "root:" + R + "@tcp(127.0.0.1:3306)/test", "pw@"},
		{DriverMySQL, "app:s3cret@tcp6([::1]:3306)/test", "app:" + R + "@tcp6([::1]:3306)/test", "s3cret"},
		{DriverMySQL, "app:a#b:c/d?e f@unix(/run/mysqld/mysqld.sock)/test?parseTime=true", "app:" + R + "@unix(/run/mysqld/mysqld.sock)/test?parseTime=true", "a#b:c/d?e f"},
		{DriverMySQL, "root@tcp(127.0.0.1:3306)/test", "root@tcp(127.0.0.1:3306)/test", ""},
		{DriverMySQL, "root:@tcp(127.0.0.1:3306)/test", "root:@tcp(127.0.0.1:3306)/test", ""},
		{DriverMySQL, "root:hunter2@tcp(127.0.0.1:3306", R, "hunter2"},
		{DriverMySQL, "root:hunter2@tcp(h:3306)/test?parseTime=maybe", R, "hunter2"},
		// pgx: URLs
		{DriverPostgres, "postgres://app:hunter2@db:5432/films", "postgres://app:" + R + "@db:5432/films", "hunter2"},
		{DriverPostgres, "postgresql://u:PG%23SECRET@h/db", "postgresql://u:" + R + "@h/db", "SECRET"},
		{DriverPostgres, "postgresql://u:PG#SECRET@h/db", R, "SECRET"},
		{DriverPostgres, "postgres://u:a%40b%3Ac%2Fd%3Fe%20f@h:5433/db?sslmode=disable", "postgres://u:" + R + "@h:5433/db?sslmode=disable", "a%40b"},
		{DriverPostgres, "postgres://u@h/db?password=hunter2&sslmode=disable", "postgres://u@h/db?password=" + R + "&sslmode=disable", "hunter2"},
		{DriverPostgres, "postgres://u:hunter2@h1:5432,h2:5433/db", "postgres://u:" + R + "@h1:5432,h2:5433/db", "hunter2"},
		{DriverPostgres, "postgres://u@h/db", "postgres://u@h/db", ""},
		{DriverPostgres, "postgres://u:hunter2@h:notaport/db", R, "hunter2"},
		// pgx: keyword/value
		{DriverPostgres, "host=db user=app password=hunter2", "host=db user=app password=" + R, "hunter2"},
		{DriverPostgres, "host=db password='a b#c@d:e/f?g' dbname=x", "host=db password=" + R + " dbname=x", "a b#c"},
		{DriverPostgres, `host=db password = 'it\'s' user=u`, "host=db password = " + R + " user=u", "it"},
		{DriverPostgres, `password=p\ q host=db`, "password=" + R + " host=db", `p\ q`},
		{DriverPostgres, "host=db user=app dbname=films", "host=db user=app dbname=films", ""},
		{DriverPostgres, "host=db password='unterminated", R, "unterminated"},
		{DriverPostgres, "host=db hunter2", R, "hunter2"},
		// a DSN of a driver that has none, or under no driver
		{"sqlite", "file:x.db?_auth_pass=hunter2", R, "hunter2"},
		{"", "root:hunter2@tcp(h)/db", R, "hunter2"},
		// the placeholder itself cannot be used to unmask anything
		{DriverMySQL, "root:SLUICEREDACTEDPASSWORD@tcp(h:3306)/db", R, ""},
	}
	for _, tt := range tests {
		t.Run(tt.driver+" "+tt.dsn, func(t *testing.T) {
			got := RedactDSN(tt.driver, tt.dsn)
			if got != tt.want {
				t.Errorf("RedactDSN(%q, %q) = %q, want %q", tt.driver, tt.dsn, got, tt.want)
			}
			if tt.secret != "" && strings.Contains(got, tt.secret) {
				t.Errorf("RedactDSN(%q, %q) = %q shows %q", tt.driver, tt.dsn, got, tt.secret)
			}
		})
	}
}

func TestRedactURLsInOtherFields(t *testing.T) {
	tests := map[string]string{
		"http://u:hunter2@registry:8081":    "http://u:" + Redacted + "@registry:8081",
		"http://u:hun#ter2@registry:8081":   Redacted,
		"http://registry:8081/path?x=1#f":   "http://registry:8081/path?x=1#f",
		"films.db":                          "films.db",
		"root:hunter2@tcp(h)/not-a-dsn-key": "root:hunter2@tcp(h)/not-a-dsn-key",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// The leaks found: through Redact (what validate --print and the admin API
// show) a DSN is masked by the driver of the sink it belongs to.
func TestRedactedConfigHidesDSNPasswordsOfEveryShape(t *testing.T) {
	for _, tt := range []struct{ sink, dsn, secret string }{
		{"mysql", "root:MY@SECRET2@tcp(127.0.0.1:3306)/test", "SECRET2"},
		{"mysql", "root:pw1234@/test", "pw1234"},
		{"mysql", "root:s3cret@tcp6([::1]:3306)/test", "s3cret"},
		{"postgres", "postgresql://u:PG#SECRET@h/db", "SECRET"},
	} {
		t.Run(tt.dsn, func(t *testing.T) {
			f, err := Parse([]byte(`
name: p
source: {kafka: {brokers: [b:9092], topics: [t], group: g}}
sink:
  `+tt.sink+`:
    dsn: ${DSN}
    table: t
`), envOf("DSN", tt.dsn))
			if err != nil {
				t.Fatal(err)
			}
			if out := f.YAML(); strings.Contains(out, tt.secret) {
				t.Fatalf("printed config shows the password:\n%s", out)
			}
		})
	}
}

// A password pgx takes from PGPASSWORD is not in the string: a DSN that
// happens to contain the same text is not redacted whole for it.
func TestRedactPostgresWithPGPASSWORDSet(t *testing.T) {
	t.Setenv("PGPASSWORD", "postgres")
	if got := RedactDSN(DriverPostgres, "postgres://postgres@127.0.0.1:5432/test"); got != "postgres://postgres@127.0.0.1:5432/test" {
		t.Fatalf("got %q", got)
	}
	if got := RedactDSN(DriverPostgres, "postgres://postgres:hunter2@127.0.0.1:5432/test"); got != "postgres://postgres:"+Redacted+"@127.0.0.1:5432/test" {
		t.Fatalf("got %q", got)
	}
}
