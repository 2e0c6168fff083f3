package bqemu

import (
	"encoding/json"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	bq "google.golang.org/api/bigquery/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestScalarConversions(t *testing.T) {
	packedTime := int64(13<<12|45<<6|7)<<20 | 123456
	packedDatetime := int64(2024<<26|2<<22|29<<17|23<<12|59<<6|58)<<20 | 1
	for _, tc := range []struct {
		name string
		got  func() (string, error)
		want string // "" means an error is expected
	}{
		{"packed TIME", func() (string, error) { return decodePackedTime(packedTime) }, "13:45:07.123456"},
		{"packed TIME hour 24", func() (string, error) { return decodePackedTime(int64(24<<12) << 20) }, ""},
		{"packed DATETIME", func() (string, error) { return decodePackedDatetime(packedDatetime) }, "2024-02-29T23:59:58.000001"},
		{"packed DATETIME Feb 30", func() (string, error) { return decodePackedDatetime(int64(2023<<26|2<<22|30<<17) << 20) }, ""},
		{"NUMERIC bytes 1.5", func() (string, error) { return decodeDecimalBytes(leBytes(1_500_000_000), typeNumeric) }, "1.5"},
		{"NUMERIC bytes -2", func() (string, error) { return decodeDecimalBytes(leBytes(-2_000_000_000), typeNumeric) }, "-2"},
		{"NUMERIC string rounding", func() (string, error) { return parseDecimal("0.0000000015", typeNumeric) }, "0.000000002"},
		{"NUMERIC out of range", func() (string, error) { return parseDecimal("1e30", typeNumeric) }, ""},
		{"BIGNUMERIC in range", func() (string, error) { return parseDecimal("1e30", typeBigNumeric) }, "1000000000000000000000000000000"},
		{"TIMESTAMP string", func() (string, error) { return parseTimestamp("2024-01-02 03:04:05.5+01:00") }, "1704161045500000"},
		{"TIMESTAMP RFC 3339", func() (string, error) { return parseTimestamp("1970-01-01T00:00:01Z") }, "1000000"},
		{"TIMESTAMP out of range", func() (string, error) { return canonicalTimestampMicros(maxTimestampMicros + 1) }, ""},
		{"DATE days", func() (string, error) { return canonicalDateDays(19000) }, "2022-01-08"},
		{"DATE year 10000", func() (string, error) { return canonicalDateDays(maxDateDays + 1) }, ""},
		{"DATE string", func() (string, error) { return parseDate("2024-13-01") }, ""},
		{"DATETIME string", func() (string, error) { return parseDatetime("2024-01-02 03:04:05.25") }, "2024-01-02T03:04:05.250000"},
		{"TIME string", func() (string, error) { return parseTime("23:59:59") }, "23:59:59"},
		{"STRING invalid UTF-8", func() (string, error) { return canonicalString("\xff") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.got()
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// leBytes encodes n as the Storage API's little-endian two's complement.
func leBytes(n int64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(n >> (8 * i))
	}
	return b
}

func TestWellKnownTypesInWriterSchema(t *testing.T) {
	// A writer schema may use google.protobuf wrappers and Timestamp.
	schema := []*bq.TableFieldSchema{
		{Name: "n", Type: "INTEGER"}, {Name: "ts", Type: "TIMESTAMP"},
	}
	fields, _ := normalizeFields(schema, "")
	md := wrapperAndTimestampDescriptor(t)
	plan, err := buildPlan(md, fields, "")
	if err != nil {
		t.Fatalf("buildPlan: %v", err)
	}
	msg := buildMessage(t, md, map[string]any{})
	msg.Set(md.Fields().ByName("n"), protoreflect.ValueOfMessage(wrapperspb.Int64(7).ProtoReflect()))
	msg.Set(md.Fields().ByName("ts"), protoreflect.ValueOfMessage(timestamppb.New(time.Unix(2, 5000)).ProtoReflect()))
	row, err := plan.decode(msg, "", &missingValues{}, time.Now())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if row["n"] != "7" || row["ts"] != "2000005" {
		t.Fatalf("row %v, want n 7 and ts 2000005", row)
	}
}

func wrapperAndTimestampDescriptor(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	dp := mustDescriptorProto(t, `{"name":"root","field":[
		{"name":"n","number":1,"label":"LABEL_OPTIONAL","type":"TYPE_MESSAGE","typeName":".google.protobuf.Int64Value"},
		{"name":"ts","number":2,"label":"LABEL_OPTIONAL","type":"TYPE_MESSAGE","typeName":".google.protobuf.Timestamp"}]}`)
	mt, err := newDescriptorCache().compile(dp)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return mt.Descriptor()
}

func mustDescriptorProto(t *testing.T, js string) *descriptorpb.DescriptorProto {
	t.Helper()
	var dp descriptorpb.DescriptorProto
	if err := protojson.Unmarshal([]byte(js), &dp); err != nil {
		t.Fatalf("descriptor: %v", err)
	}
	return &dp
}

func TestMissingValueDefaults(t *testing.T) {
	schema := []*bq.TableFieldSchema{
		{Name: "id", Type: "INTEGER", Mode: "REQUIRED"},
		{Name: "region", Type: "STRING", Mode: "REQUIRED", DefaultValueExpression: "'eu'"},
		{Name: "at", Type: "TIMESTAMP", DefaultValueExpression: "CURRENT_TIMESTAMP()"},
	}
	fields, _ := normalizeFields(schema, "")
	md, _ := writerSchema(t, schema[:1])
	plan, err := buildPlan(md, fields, "")
	if err != nil {
		t.Fatal(err)
	}
	msg := buildMessage(t, md, map[string]any{"id": 1})
	now := time.UnixMicro(42)
	if _, err := plan.decode(msg, "", &missingValues{}, now); err == nil {
		t.Fatal("a missing REQUIRED column read as NULL passed")
	}
	row, err := plan.decode(msg, "", &missingValues{fallback: storagepb.AppendRowsRequest_DEFAULT_VALUE}, now)
	if err != nil {
		t.Fatalf("decode with DEFAULT_VALUE: %v", err)
	}
	if row["region"] != "eu" || row["at"] != "42" {
		t.Fatalf("row %v, want region eu and at 42", row)
	}
	row, err = plan.decode(msg, "", &missingValues{
		fallback: storagepb.AppendRowsRequest_DEFAULT_VALUE,
		byColumn: map[string]storagepb.AppendRowsRequest_MissingValueInterpretation{"at": storagepb.AppendRowsRequest_NULL_VALUE},
	}, now)
	if err != nil || row["at"] != nil {
		t.Fatalf("at with NULL_VALUE: %v, %v; want NULL", row["at"], err)
	}
}

func TestFaultsJSONRoundTrip(t *testing.T) {
	in := Faults{Code: codes.ResourceExhausted, Rate: 0.25, Next: 2, Terminate: true, Latency: 15 * time.Millisecond, MaxConnections: 1000}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Faults
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("round trip of %s: %+v, %v", b, out, err)
	}
	var fs faultState
	fs.set(Faults{Rate: 1})
	for range 10 {
		if inj := fs.next(); inj.err == nil || inj.err.Code() != codes.ResourceExhausted {
			t.Fatalf("rate 1: injection %+v, want RESOURCE_EXHAUSTED every time", inj)
		}
	}
}
