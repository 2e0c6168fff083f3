package config

import (
	"net/url"
	"regexp"
	"strings"
)

var (
	// user:password@tcp(host)/db (go-sql-driver/mysql)
	mysqlPassword = regexp.MustCompile(`^([^:@/\s]+):([^@]*)@(tcp|unix)\(`)
	// password=secret in a key=value DSN (libpq)
	kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)
)

// RedactDSN masks a password inside a connection string or URL; other
// strings come back unchanged.
func RedactDSN(s string) string {
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
				return strings.Replace(u.String(), "xxxxx", Redacted, 1)
			}
		}
	}
	if mysqlPassword.MatchString(s) {
		return mysqlPassword.ReplaceAllString(s, "${1}:"+Redacted+"@${3}(")
	}
	if kvPassword.MatchString(s) && strings.Contains(s, "=") {
		return kvPassword.ReplaceAllString(s, "${1}"+Redacted)
	}
	return s
}
