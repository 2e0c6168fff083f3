package connector

// FieldType is a portable column type that codecs produce and sinks map to
// their own types (SQL column types, BigQuery field types).
type FieldType string

const (
	TypeString         FieldType = "string"
	TypeBytes          FieldType = "bytes"
	TypeBool           FieldType = "bool"
	TypeInt            FieldType = "int"     // 64-bit integer
	TypeFloat          FieldType = "float"   // 64-bit float
	TypeDecimal        FieldType = "decimal" // *big.Rat in Fields; Precision/Scale set
	TypeDate           FieldType = "date"    // time.Time at midnight UTC
	TypeTime           FieldType = "time"    // time.Duration since midnight
	TypeTimestamp      FieldType = "timestamp"
	TypeLocalTimestamp FieldType = "local_timestamp" // time.Time, no zone meaning
	TypeUUID           FieldType = "uuid"            // string
	TypeRecord         FieldType = "record"          // map[string]any; Fields set
	TypeArray          FieldType = "array"           // []any; Items set
	TypeMap            FieldType = "map"             // map[string]any; Items set (values)
	TypeJSON           FieldType = "json"            // anything else, kept as JSON
)

// Schema is the shape of a decoded value, when the codec knows it.
// ID and Version identify it in a schema registry (0 when unknown), so sinks
// can cache derived artefacts (SQL column lists, protobuf descriptors) per
// schema.
type Schema struct {
	ID      int
	Name    string // full record name, e.g. com.example.PurchaseRequestEvent
	Version int
	Fields  []Field
}

// Field is one named field of a record schema.
type Field struct {
	Name      string
	Type      FieldType
	Nullable  bool
	Precision int     // decimal
	Scale     int     // decimal
	Fields    []Field // record
	Items     *Field  // array items, map values
	Doc       string
}
