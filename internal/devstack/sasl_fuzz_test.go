package devstack

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/gcp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzSASLGate: the dev broker's SASL check reads what any client sends;
// it must never panic, and must never accept what is not the configured
// credentials.
func FuzzSASLGate(f *testing.F) {
	for _, s := range []string{
		"\x00u\x00pw", "\x00u\x00wrong", "a\x00u\x00pw", "\x00\x00", "",
		"n,,n=u,r=abc", "n,,n=u,r=", "n,a=u,n=u,r=x", "c=biws,r=abcdef,p=AAAA", "c=biws,r=,p=",
		"n,,\x01auth=Bearer a.b.c\x01\x01", "n,,\x01auth=Bearer \x01\x01", "n,,\x01auth=\x01",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "OAUTHBEARER"} {
			g, _, err := newSASLGate(SASL{Mechanism: mech, User: "u", Password: "pw"})
			if err != nil {
				t.Fatal(err)
			}
			_ = g.checkPlain(msg)
			_ = g.scramFirst(msg)
			_ = g.scramFinal(msg)
			req := kmsg.NewPtrSASLAuthenticateRequest()
			req.SASLAuthBytes = append([]byte(nil), msg...)
			if problem := g.checkToken(req); problem == "" && mech == "OAUTHBEARER" {
				if _, err := DefaultTokenCheck(tokenOf(string(msg))); err != nil {
					t.Fatalf("accepted %q, whose token the check refuses: %v", msg, err)
				}
			}
			if mech == "PLAIN" && g.checkPlain(msg) == "" && string(msg) != "\x00u\x00pw" && string(msg) != "u\x00u\x00pw" {
				t.Fatalf("PLAIN accepted %q", msg)
			}
		}
		_, _ = gcp.DecodeKafkaToken(string(msg), time.Now())
	})
}

func tokenOf(msg string) string {
	tok := ""
	for _, kv := range strings.Split(msg, "\x01") {
		if t, ok := strings.CutPrefix(kv, "auth=Bearer "); ok {
			tok = t
		}
	}
	return tok
}
