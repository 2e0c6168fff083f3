package admin

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// ErrTokenRequired is returned by Serve and CheckExposure for an admin API
// that would listen beyond loopback without a token.
var ErrTokenRequired = errors.New("the admin API listens beyond loopback, so it needs a token: set admin.token or SLUICE_ADMIN_TOKEN, or listen on 127.0.0.1")

// CheckExposure refuses an address that is not loopback when token is
// empty: anyone who can reach it could pause pipelines and read their
// configuration.
func CheckExposure(addr net.Addr, token string) error {
	if token == "" && !isLoopback(addr) {
		return fmt.Errorf("admin API on %s: %w", addr, ErrTokenRequired)
	}
	return nil
}

// checkHost answers 403 to a request whose Host is not this server's.
//
// A web page can point a name it controls at 127.0.0.1 (DNS rebinding);
// the operator's browser then treats the admin API as that page's own
// origin, so Origin checks pass, and only the Host header still carries the
// attacker's name. Accepted: the listen address, localhost and loopback
// addresses (with the listen port, when known), any IP address with the
// listen port when listening on all interfaces (an address is not a name
// and cannot be rebound), and the names in admin.allowed_hosts (on any
// port: they are usually a proxy's).
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("host %q is not this admin API's: it answers to %s; add the name to admin.allowed_hosts to reach it through it (requests for other names are refused against DNS rebinding)", r.Host, s.answersTo()))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) hostAllowed(hostport string) bool {
	if hostport == "" {
		return false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	for _, a := range s.opts.AllowedHosts {
		a = strings.ToLower(a)
		if a == host || a == strings.ToLower(hostport) {
			return true
		}
	}
	listenHost, listenPort := s.listenHostPort()
	if listenPort != "" && port != listenPort && !(port == "" && listenPort == "80") {
		return false
	}
	ip := net.ParseIP(host)
	switch {
	case host == "localhost", ip != nil && ip.IsLoopback():
		return true
	case listenHost != "" && host == strings.Trim(listenHost, "[]"):
		return true
	case ip != nil && listenHost != "":
		lip := net.ParseIP(strings.Trim(listenHost, "[]"))
		return lip != nil && lip.IsUnspecified()
	}
	return false
}

// listenHostPort is the address Serve listens on; empty while the handler
// is mounted elsewhere (then loopback names are accepted on any port).
func (s *Server) listenHostPort() (string, string) {
	addr := s.listenAddr.Load()
	if addr == nil {
		return "", ""
	}
	h, p, err := net.SplitHostPort(*addr)
	if err != nil {
		return "", ""
	}
	return h, p
}

func (s *Server) answersTo() string {
	h, p := s.listenHostPort()
	var names []string
	if h != "" {
		names = append(names, net.JoinHostPort(strings.Trim(h, "[]"), p))
	}
	if p == "" {
		names = append(names, "localhost", "127.0.0.1", "[::1]")
	} else {
		names = append(names, "localhost:"+p, "127.0.0.1:"+p, "[::1]:"+p)
	}
	names = append(names, s.opts.AllowedHosts...)
	return strings.Join(names, ", ")
}

// authorized reports whether the request carries the token, or no token is
// set.
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Token == "" {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.Token)) == 1
}
