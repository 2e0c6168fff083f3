package bqemu

import (
	"strings"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	bq "google.golang.org/api/bigquery/v2"
)

// Column types, by the legacy names that BigQuery's REST API reports
// whatever name (INT64, BOOL, STRUCT, ...) the table was created with.
const (
	typeString     = "STRING"
	typeBytes      = "BYTES"
	typeInteger    = "INTEGER"
	typeFloat      = "FLOAT"
	typeNumeric    = "NUMERIC"
	typeBigNumeric = "BIGNUMERIC"
	typeBoolean    = "BOOLEAN"
	typeTimestamp  = "TIMESTAMP"
	typeDate       = "DATE"
	typeTime       = "TIME"
	typeDatetime   = "DATETIME"
	typeJSON       = "JSON"
	typeGeography  = "GEOGRAPHY"
	typeRecord     = "RECORD"

	modeNullable = "NULLABLE"
	modeRequired = "REQUIRED"
	modeRepeated = "REPEATED"
)

var typeAliases = map[string]string{
	"STRING": typeString, "BYTES": typeBytes,
	"INTEGER": typeInteger, "INT64": typeInteger,
	"FLOAT": typeFloat, "FLOAT64": typeFloat,
	"NUMERIC": typeNumeric, "DECIMAL": typeNumeric,
	"BIGNUMERIC": typeBigNumeric, "BIGDECIMAL": typeBigNumeric,
	"BOOLEAN": typeBoolean, "BOOL": typeBoolean,
	"TIMESTAMP": typeTimestamp, "DATE": typeDate, "TIME": typeTime, "DATETIME": typeDatetime,
	"JSON": typeJSON, "GEOGRAPHY": typeGeography,
	"RECORD": typeRecord, "STRUCT": typeRecord,
}

var storageTypes = map[string]storagepb.TableFieldSchema_Type{
	typeString: storagepb.TableFieldSchema_STRING, typeBytes: storagepb.TableFieldSchema_BYTES,
	typeInteger: storagepb.TableFieldSchema_INT64, typeFloat: storagepb.TableFieldSchema_DOUBLE,
	typeNumeric: storagepb.TableFieldSchema_NUMERIC, typeBigNumeric: storagepb.TableFieldSchema_BIGNUMERIC,
	typeBoolean: storagepb.TableFieldSchema_BOOL, typeTimestamp: storagepb.TableFieldSchema_TIMESTAMP,
	typeDate: storagepb.TableFieldSchema_DATE, typeTime: storagepb.TableFieldSchema_TIME,
	typeDatetime: storagepb.TableFieldSchema_DATETIME, typeJSON: storagepb.TableFieldSchema_JSON,
	typeGeography: storagepb.TableFieldSchema_GEOGRAPHY, typeRecord: storagepb.TableFieldSchema_STRUCT,
}

var storageModes = map[string]storagepb.TableFieldSchema_Mode{
	modeNullable: storagepb.TableFieldSchema_NULLABLE,
	modeRequired: storagepb.TableFieldSchema_REQUIRED,
	modeRepeated: storagepb.TableFieldSchema_REPEATED,
}

// normalizeFields validates a schema as BigQuery does when a table is
// created or patched, and returns a deep copy with canonical type and mode
// names. path prefixes field names in error messages.
func normalizeFields(fields []*bq.TableFieldSchema, path string) ([]*bq.TableFieldSchema, error) {
	out := make([]*bq.TableFieldSchema, 0, len(fields))
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if f == nil {
			return nil, invalidf("Invalid field in schema %q: null field", path)
		}
		name := path + f.Name
		if f.Name == "" || len(f.Name) > 300 || strings.ContainsAny(f.Name, ".\x00") {
			return nil, invalidf("Invalid field name %q.", name)
		}
		if seen[strings.ToLower(f.Name)] {
			return nil, invalidf("Field %s already exists in schema", name)
		}
		seen[strings.ToLower(f.Name)] = true
		typ, ok := typeAliases[strings.ToUpper(f.Type)]
		if !ok {
			return nil, invalidf("Invalid value for type: %s is not a valid value (field %s)", f.Type, name)
		}
		mode := strings.ToUpper(f.Mode)
		if mode == "" {
			mode = modeNullable
		}
		if _, ok := storageModes[mode]; !ok {
			return nil, invalidf("Invalid value for mode: %s is not a valid value (field %s)", f.Mode, name)
		}
		c := *f
		c.Type, c.Mode, c.Fields = typ, mode, nil
		if typ == typeRecord {
			if len(f.Fields) == 0 {
				return nil, invalidf("Field %s is type RECORD but has no schema", name)
			}
			sub, err := normalizeFields(f.Fields, name+".")
			if err != nil {
				return nil, err
			}
			c.Fields = sub
		} else if len(f.Fields) > 0 {
			return nil, invalidf("Field %s is type %s and cannot have sub-fields", name, typ)
		}
		out = append(out, &c)
	}
	return out, nil
}

// checkSchemaEvolution reports whether next may replace prev: BigQuery
// allows adding NULLABLE or REPEATED columns (also inside records) and
// relaxing REQUIRED to NULLABLE, never dropping or retyping a column.
func checkSchemaEvolution(prev, next []*bq.TableFieldSchema, path string) error {
	for _, p := range prev {
		n := findField(next, p.Name)
		if n == nil {
			return invalidf("Provided Schema does not match Table. Field %s is missing in new schema", path+p.Name)
		}
		if n.Type != p.Type {
			return invalidf("Provided Schema does not match Table. Field %s has changed type from %s to %s", path+p.Name, p.Type, n.Type)
		}
		if n.Mode != p.Mode && (p.Mode != modeRequired || n.Mode != modeNullable) {
			return invalidf("Provided Schema does not match Table. Field %s has changed mode from %s to %s", path+p.Name, p.Mode, n.Mode)
		}
		if p.Type == typeRecord {
			if err := checkSchemaEvolution(p.Fields, n.Fields, path+p.Name+"."); err != nil {
				return err
			}
		}
	}
	for _, n := range next {
		if findField(prev, n.Name) == nil && n.Mode == modeRequired {
			return invalidf("Provided Schema does not match Table. Cannot add required field %s", path+n.Name)
		}
	}
	return nil
}

// findField looks a column up by name; BigQuery column names are
// case-insensitive.
func findField(fields []*bq.TableFieldSchema, name string) *bq.TableFieldSchema {
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}

// toStorageSchema converts a normalized REST schema to the Storage API's.
func toStorageSchema(fields []*bq.TableFieldSchema) *storagepb.TableSchema {
	return &storagepb.TableSchema{Fields: toStorageFields(fields)}
}

func toStorageFields(fields []*bq.TableFieldSchema) []*storagepb.TableFieldSchema {
	out := make([]*storagepb.TableFieldSchema, 0, len(fields))
	for _, f := range fields {
		out = append(out, &storagepb.TableFieldSchema{
			Name:        f.Name,
			Type:        storageTypes[f.Type],
			Mode:        storageModes[f.Mode],
			Fields:      toStorageFields(f.Fields),
			Description: f.Description,
			MaxLength:   f.MaxLength,
			Precision:   f.Precision,
			Scale:       f.Scale,
		})
	}
	return out
}
