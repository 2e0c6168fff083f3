package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// ClientProperties is a Kafka client.properties file (Kafka's own
// key=value format, as kafka-console-producer --producer.config and
// librdkafka's -F read it), as far as Sluice's command-line tools use
// it: the connection, and the producer settings a load test takes.
type ClientProperties struct {
	// Brokers is bootstrap.servers.
	Brokers []string
	// TLS is set by security.protocol SSL or SASL_SSL, with PEM files
	// from ssl.ca.location / ssl.truststore.location (type PEM),
	// ssl.certificate.location and ssl.key.location.
	TLS *TLS
	// SASL is set by security.protocol SASL_*, sasl.mechanism and the
	// username and password of sasl.jaas.config (or librdkafka's
	// sasl.username and sasl.password).
	SASL *SASL
	// Producer holds linger.ms, batch.size, compression.type and acks
	// when given.
	Producer map[string]string
	// Ignored lists the keys Sluice does not use, sorted.
	Ignored []string
}

var producerKeys = map[string]bool{"linger.ms": true, "batch.size": true, "compression.type": true, "acks": true}

// ReadClientProperties reads path; every problem is reported at once,
// with its line.
func ReadClientProperties(path string) (ClientProperties, error) {
	f, err := os.Open(path)
	if err != nil {
		return ClientProperties{}, fmt.Errorf("reading client properties: %w", err)
	}
	defer f.Close()
	cp, err := ParseClientProperties(f)
	if err != nil {
		return ClientProperties{}, fmt.Errorf("%s: %w", path, err)
	}
	return cp, nil
}

var jaasField = regexp.MustCompile(`(username|password)\s*=\s*"((?:[^"\\]|\\.)*)"`)

// ParseClientProperties reads the properties format: key=value or
// key: value lines, # and ! comments, a trailing backslash continuing a
// line.
func ParseClientProperties(r io.Reader) (ClientProperties, error) {
	props := map[string]string{}
	lines := map[string]int{}
	sc := bufio.NewScanner(r)
	var pending string
	n, start := 0, 0
	var problems []error
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending == "" {
			start = n
			if line == "" || line[0] == '#' || line[0] == '!' {
				continue
			}
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`)
			continue
		}
		line, pending = pending+line, ""
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			problems = append(problems, fmt.Errorf("line %d: want key=value", start))
			continue
		}
		key := strings.TrimSpace(line[:i])
		props[key], lines[key] = strings.TrimSpace(line[i+1:]), start
	}
	if err := sc.Err(); err != nil {
		return ClientProperties{}, err
	}
	cp := ClientProperties{Producer: map[string]string{}}
	bad := func(key, format string, args ...any) {
		problems = append(problems, fmt.Errorf("line %d: %s: %s", lines[key], key, fmt.Sprintf(format, args...)))
	}
	protocol := strings.ToUpper(props["security.protocol"])
	switch protocol {
	case "", "PLAINTEXT":
	case "SSL", "SASL_SSL":
		cp.TLS = &TLS{Enabled: true}
	case "SASL_PLAINTEXT":
	default:
		bad("security.protocol", "%q: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", props["security.protocol"])
	}
	if strings.HasPrefix(protocol, "SASL_") {
		cp.SASL = &SASL{Mechanism: strings.ToUpper(props["sasl.mechanism"]), Username: props["sasl.username"], Password: props["sasl.password"]}
		if cp.SASL.Mechanism == "" {
			cp.SASL.Mechanism = "PLAIN" // Kafka's default
		}
		for _, m := range jaasField.FindAllStringSubmatch(props["sasl.jaas.config"], -1) {
			v := strings.ReplaceAll(m[2], `\"`, `"`)
			if m[1] == "username" {
				cp.SASL.Username = v
			} else {
				cp.SASL.Password = v
			}
		}
	}
	for key, value := range props {
		switch {
		case key == "bootstrap.servers":
			for _, b := range strings.Split(value, ",") {
				if b = strings.TrimSpace(b); b != "" {
					cp.Brokers = append(cp.Brokers, b)
				}
			}
		case strings.HasPrefix(key, "ssl.") && cp.TLS == nil:
			cp.Ignored = append(cp.Ignored, key) // TLS is off: security.protocol is not SSL
		case key == "security.protocol", key == "sasl.mechanism", key == "sasl.jaas.config",
			key == "sasl.username", key == "sasl.password", key == "ssl.truststore.type", key == "ssl.keystore.type":
		case key == "ssl.ca.location", key == "ssl.truststore.location":
			if key == "ssl.truststore.location" && !strings.EqualFold(props["ssl.truststore.type"], "PEM") {
				bad(key, "only a PEM truststore (ssl.truststore.type=PEM) can be read; convert a JKS or PKCS12 one with keytool and openssl")
				continue
			}
			cp.tls().CAFile = value
		case key == "ssl.certificate.location", key == "ssl.keystore.location" && strings.EqualFold(props["ssl.keystore.type"], "PEM"):
			cp.tls().CertFile = value
		case key == "ssl.key.location":
			cp.tls().KeyFile = value
		case key == "ssl.keystore.location":
			bad(key, "only a PEM keystore (ssl.keystore.type=PEM) can be read; use ssl.certificate.location and ssl.key.location")
		case key == "ssl.endpoint.identification.algorithm":
			if value == "" || strings.EqualFold(value, "none") {
				cp.tls().InsecureSkipVerify = true
			}
		case producerKeys[key]:
			cp.Producer[key] = value
		default:
			cp.Ignored = append(cp.Ignored, key)
		}
	}
	sort.Strings(cp.Ignored)
	sort.SliceStable(problems, func(i, j int) bool { return lineOf(problems[i]) < lineOf(problems[j]) })
	return cp, errors.Join(problems...)
}

// tls is the TLS settings, set when security.protocol asks for TLS.
func (cp *ClientProperties) tls() *TLS { return cp.TLS }

func lineOf(err error) int {
	var n int
	_, _ = fmt.Sscanf(err.Error(), "line %d", &n)
	return n
}
