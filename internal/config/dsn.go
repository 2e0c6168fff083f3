package config

import (
	"net/url"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// Drivers whose DSNs RedactDSN understands; a struct field tagged
// dsn:"<driver>" in a config struct holds such a DSN (see Redact).
const (
	DriverPostgres = "postgres"
	DriverMySQL    = "mysql"
)

// placeholder stands for the password while a redacted DSN is checked by
// re-parsing it: letters only, so no driver quotes or escapes it.
const placeholder = "SLUICEREDACTEDPASSWORD"

// RedactDSN masks the password in a connection string of driver (postgres:
// a postgres:// URL or keyword/value DSN; mysql: go-sql-driver's DSN). The
// string is read by the driver's own parser, so a password holding @ # : /
// ? or spaces is found where the driver would find it. Whatever the driver
// cannot parse, or whatever cannot be masked and then parsed back to the
// same settings with the placeholder as the password, is redacted whole.
func RedactDSN(driver, dsn string) string {
	if dsn == "" {
		return ""
	}
	if strings.Contains(dsn, placeholder) {
		return Redacted
	}
	var out string
	var ok bool
	switch driver {
	case DriverPostgres:
		out, ok = redactPostgres(dsn)
	case DriverMySQL:
		out, ok = redactMySQL(dsn)
	}
	if !ok {
		return Redacted
	}
	return strings.ReplaceAll(out, placeholder, Redacted)
}

func redactMySQL(dsn string) (string, bool) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", false
	}
	if cfg.Passwd == "" {
		return dsn, true
	}
	masked := cfg.Clone()
	masked.Passwd = placeholder
	out := masked.FormatDSN()
	back, err := mysql.ParseDSN(out)
	if err != nil || back.Passwd != placeholder || back.User != cfg.User || back.Net != cfg.Net || back.Addr != cfg.Addr || back.DBName != cfg.DBName {
		return "", false
	}
	return out, true
}

func redactPostgres(dsn string) (string, bool) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "", false
	}
	mask := maskKeywordValue
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		mask = maskPostgresURL
	}
	out, masked, ok := mask(dsn)
	if !ok {
		return "", false
	}
	return checkPostgres(cfg, dsn, out, masked)
}

// checkPostgres parses the masked DSN back: the placeholder must be the
// password and everything that names the connection must be unchanged. A
// DSN in which nothing was masked must not hold the password pgx found,
// unless that came from PGPASSWORD (a password file's is rarely also in
// the string; when it is, the DSN is redacted whole).
func checkPostgres(cfg *pgconn.Config, dsn, out string, masked bool) (string, bool) {
	if !masked {
		if cfg.Password != "" && cfg.Password != os.Getenv("PGPASSWORD") && strings.Contains(dsn, cfg.Password) {
			return "", false
		}
		return dsn, true
	}
	back, err := pgconn.ParseConfig(out)
	if err != nil || back.Password != placeholder || back.User != cfg.User || back.Host != cfg.Host || back.Port != cfg.Port || back.Database != cfg.Database || len(back.Fallbacks) != len(cfg.Fallbacks) {
		return "", false
	}
	return out, true
}

// maskPostgresURL puts the placeholder where pgx reads a URL's password:
// the user info and the password query parameter.
func maskPostgresURL(dsn string) (out string, masked, ok bool) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", false, false
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), placeholder)
			masked = true
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", placeholder)
		u.RawQuery = q.Encode()
		masked = true
	}
	return u.String(), masked, true
}

// maskKeywordValue replaces every password value of a libpq keyword/value
// DSN (host=h password='a b') with the placeholder, reading it the way pgx
// and libpq do: key = value, values plain up to a space or single-quoted,
// with backslash escapes. The result is checked by pgx (checkPostgres).
func maskKeywordValue(s string) (out string, masked, ok bool) {
	const space = " \t\n\r\v\f"
	var b strings.Builder
	i := 0
	for {
		j := i + len(s[i:]) - len(strings.TrimLeft(s[i:], space))
		if j == len(s) {
			b.WriteString(s[i:])
			return b.String(), masked, true
		}
		eq := strings.IndexByte(s[j:], '=')
		if eq < 0 {
			return "", false, false
		}
		key := strings.Trim(s[j:j+eq], space)
		v := j + eq + 1
		v += len(s[v:]) - len(strings.TrimLeft(s[v:], space))
		end := v
		switch {
		case end == len(s):
		case s[end] != '\'':
			for ; end < len(s) && !strings.ContainsRune(space, rune(s[end])); end++ {
				if s[end] == '\\' {
					end++
				}
			}
			end = min(end, len(s))
		default:
			end++
			for ; end < len(s) && s[end] != '\''; end++ {
				if s[end] == '\\' {
					end++
				}
			}
			if end >= len(s) {
				return "", false, false
			}
			end++ // the closing quote
		}
		b.WriteString(s[i:v])
		if key == "password" {
			b.WriteString(placeholder)
			masked = true
		} else {
			b.WriteString(s[v:end])
		}
		i = end
	}
}

// redactURL masks the password of any other string that is a URL with
// user info (a schema registry URL, say). A string that looks like a URL
// with user info but does not parse is redacted whole.
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return Redacted
		}
		return s
	}
	if u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	if strings.Contains(s, placeholder) {
		return Redacted
	}
	u.User = url.UserPassword(u.User.Username(), placeholder)
	return strings.Replace(u.String(), placeholder, Redacted, 1)
}
