package config

import (
	"strings"
	"testing"
)

func TestClientPropertiesReadsConnectionAndProducerSettings(t *testing.T) {
	cp, err := ParseClientProperties(strings.NewReader(`# Confluent Cloud, as its console prints it
bootstrap.servers=pkc-1.europe-west1.gcp.confluent.cloud:9092, b2:9092
security.protocol=SASL_SSL
sasl.mechanisms=PLAIN
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
    username="KEY" password="se\"cret";
ssl.ca.location: /etc/ssl/ca.pem
linger.ms=20
compression.type=lz4
acks=1
client.dns.lookup=use_all_dns_ips
`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cp.Brokers, ",") != "pkc-1.europe-west1.gcp.confluent.cloud:9092,b2:9092" {
		t.Errorf("brokers %v", cp.Brokers)
	}
	if cp.TLS == nil || !cp.TLS.Enabled || cp.TLS.CAFile != "/etc/ssl/ca.pem" {
		t.Errorf("TLS %+v", cp.TLS)
	}
	if cp.SASL == nil || cp.SASL.Mechanism != "PLAIN" || cp.SASL.Username != "KEY" || cp.SASL.Password != `se"cret` {
		t.Errorf("SASL %+v", cp.SASL)
	}
	if cp.Producer["linger.ms"] != "20" || cp.Producer["compression.type"] != "lz4" || cp.Producer["acks"] != "1" {
		t.Errorf("producer %v", cp.Producer)
	}
	if strings.Join(cp.Ignored, ",") != "client.dns.lookup,sasl.mechanisms" {
		t.Errorf("ignored %v", cp.Ignored)
	}
}

func TestClientPropertiesNamesEveryProblemWithItsLine(t *testing.T) {
	_, err := ParseClientProperties(strings.NewReader("security.protocol=SSL\nssl.truststore.location=/x.jks\nnot a property\nssl.keystore.location=/k.jks\n"))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"line 2: ssl.truststore.location: only a PEM truststore", "line 3: want key=value", "line 4: ssl.keystore.location: only a PEM keystore"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if _, err := ParseClientProperties(strings.NewReader("security.protocol=KERBEROS\n")); err == nil || !strings.Contains(err.Error(), "line 1: security.protocol") {
		t.Errorf("bad protocol: %v", err)
	}
}
