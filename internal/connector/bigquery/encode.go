package bigquery

import (
	"fmt"
	"sort"
	"strings"

	bq "cloud.google.com/go/bigquery"
	"cloud.google.com/go/bigquery/storage/managedwriter/adapt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluice-dev/sluice/internal/connector"
)

// rowPlan encodes decoded records as rows of one table schema: the proto
// message the Storage Write API expects, derived from the table schema by
// Google's adapt package, with each column's BigQuery type (which the
// proto type alone does not tell: TIMESTAMP and INT64 are both int64).
type rowPlan struct {
	md     protoreflect.MessageDescriptor
	cols   []*colPlan
	byName map[string]*colPlan // column name, and its lower case
}

type colPlan struct {
	name     string
	typ      bq.FieldType
	repeated bool
	fd       protoreflect.FieldDescriptor
	sub      *rowPlan // RECORD
	index    int      // in its plan's cols
}

// tableDescriptor derives the writer schema of a table schema: the
// message to build rows with, and its self-contained form to send.
func tableDescriptor(schema bq.Schema) (*rowPlan, *descriptorpb.DescriptorProto, error) {
	ss, err := adapt.BQSchemaToStorageTableSchema(schema)
	if err != nil {
		return nil, nil, fmt.Errorf("converting the table schema: %w", err)
	}
	d, err := adapt.StorageSchemaToProto2Descriptor(ss, "root")
	if err != nil {
		return nil, nil, fmt.Errorf("deriving the row descriptor: %w", err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, nil, fmt.Errorf("deriving the row descriptor: got %T, not a message", d)
	}
	dp, err := adapt.NormalizeDescriptor(md)
	if err != nil {
		return nil, nil, fmt.Errorf("normalizing the row descriptor: %w", err)
	}
	plan, err := newRowPlan(schema, md)
	return plan, dp, err
}

func newRowPlan(schema bq.Schema, md protoreflect.MessageDescriptor) (*rowPlan, error) {
	p := &rowPlan{md: md, byName: make(map[string]*colPlan, 2*len(schema))}
	for i, c := range schema {
		// adapt numbers fields by position; names may be encoded when a
		// column name is not a proto identifier.
		fd := md.Fields().ByNumber(protoreflect.FieldNumber(i + 1))
		if fd == nil {
			return nil, fmt.Errorf("the row descriptor has no field for column %s", c.Name)
		}
		cp := &colPlan{name: c.Name, typ: c.Type, repeated: c.Repeated, fd: fd, index: i}
		if c.Type == bq.RecordFieldType {
			sub, err := newRowPlan(c.Schema, fd.Message())
			if err != nil {
				return nil, err
			}
			cp.sub = sub
		}
		p.cols = append(p.cols, cp)
		p.byName[c.Name] = cp
		if l := strings.ToLower(c.Name); l != c.Name {
			if _, taken := p.byName[l]; !taken {
				p.byName[l] = cp
			}
		}
	}
	return p, nil
}

// column finds the column a record field goes to.
func (p *rowPlan) column(field string) *colPlan {
	if c := p.byName[field]; c != nil {
		return c
	}
	name := columnName(field)
	if c := p.byName[name]; c != nil {
		return c
	}
	return p.byName[strings.ToLower(name)]
}

// covers reports whether every non-null field of a schemaless value has
// a column (inside records too), so the table needs no new column for it.
func (p *rowPlan) covers(fields map[string]any) bool {
	for k, v := range fields {
		if v == nil {
			continue
		}
		c := p.column(k)
		if c == nil {
			if inferColumn(k, v) != nil {
				return false
			}
			continue
		}
		if c.sub == nil {
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			if !c.sub.covers(x) {
				return false
			}
		case []any:
			for _, e := range x {
				if m, ok := e.(map[string]any); ok && !c.sub.covers(m) {
					return false
				}
			}
		}
	}
	return true
}

// encode builds one serialized row. Missing fields are NULL; a REQUIRED
// column left empty is BigQuery's to refuse, as a row error.
func (p *rowPlan) encode(rec *connector.Record, meta []string) ([]byte, error) {
	m := dynamicpb.NewMessage(p.md)
	if err := p.fill(m, rec.Fields, ""); err != nil {
		return nil, err
	}
	for _, name := range meta {
		if err := p.fillMeta(m, rec, name); err != nil {
			return nil, err
		}
	}
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("serializing the row: %w", err)
	}
	return b, nil
}

func (p *rowPlan) fill(m protoreflect.Message, fields map[string]any, path string) error {
	for k, v := range fields {
		if v == nil {
			continue
		}
		c := p.column(k)
		if c == nil {
			return fmt.Errorf("field %s%s has no column in the table", path, k)
		}
		if err := c.set(m, v, path); err != nil {
			return err
		}
	}
	return nil
}

func (c *colPlan) set(m protoreflect.Message, v any, path string) error {
	if !c.repeated {
		val, err := c.value(m, v, path)
		if err != nil {
			return err
		}
		m.Set(c.fd, val)
		return nil
	}
	list := m.Mutable(c.fd).List()
	add := func(e any) error {
		if e == nil {
			return fmt.Errorf("field %s%s: an array element is null, which a REPEATED column cannot hold", path, c.name)
		}
		val, err := c.element(list, e, path)
		if err != nil {
			return err
		}
		list.Append(val)
		return nil
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if err := add(e); err != nil {
				return err
			}
		}
	case map[string]any:
		if c.sub == nil {
			return fmt.Errorf("field %s%s: an object does not fit REPEATED %s", path, c.name, c.typ)
		}
		// An Avro map: REPEATED RECORD {key, value}, in key order.
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := add(map[string]any{"key": k, "value": x[k]}); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("field %s%s: %s does not fit REPEATED %s", path, c.name, describe(v), c.typ)
	}
	return nil
}

// value converts one non-repeated value.
func (c *colPlan) value(m protoreflect.Message, v any, path string) (protoreflect.Value, error) {
	if c.sub != nil {
		fields, ok := v.(map[string]any)
		if !ok {
			return protoreflect.Value{}, fmt.Errorf("field %s%s: %s does not fit RECORD", path, c.name, describe(v))
		}
		sub := m.NewField(c.fd).Message()
		if err := c.sub.fill(sub, fields, path+c.name+"."); err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfMessage(sub), nil
	}
	val, err := scalar(c.typ, v)
	if err != nil {
		return protoreflect.Value{}, fmt.Errorf("field %s%s: %w", path, c.name, err)
	}
	return val, nil
}

// element converts one item of a repeated column.
func (c *colPlan) element(list protoreflect.List, v any, path string) (protoreflect.Value, error) {
	if c.sub != nil {
		fields, ok := v.(map[string]any)
		if !ok {
			return protoreflect.Value{}, fmt.Errorf("field %s%s: an element %s does not fit RECORD", path, c.name, describe(v))
		}
		sub := list.NewElement().Message()
		if err := c.sub.fill(sub, fields, path+c.name+"."); err != nil {
			return protoreflect.Value{}, err
		}
		return protoreflect.ValueOfMessage(sub), nil
	}
	val, err := scalar(c.typ, v)
	if err != nil {
		return protoreflect.Value{}, fmt.Errorf("field %s%s: %w", path, c.name, err)
	}
	return val, nil
}

func (p *rowPlan) fillMeta(m protoreflect.Message, rec *connector.Record, name string) error {
	col := metadataColumns[name]
	c := p.column(col.Name)
	if c == nil {
		return fmt.Errorf("metadata column %s is missing from the table", col.Name)
	}
	v, ok := metadataValue(rec, name)
	if !ok {
		return nil
	}
	return c.set(m, v, "")
}

// metadataValue is the value of a metadata column for rec; false: NULL.
func metadataValue(rec *connector.Record, name string) (any, bool) {
	switch name {
	case "topic":
		return rec.Topic, true
	case "partition":
		return int64(rec.Partition), true
	case "offset":
		return rec.Offset, true
	case "timestamp":
		return rec.Timestamp, !rec.Timestamp.IsZero()
	case "key":
		if rec.Key == nil {
			return nil, false
		}
		return strings.ToValidUTF8(string(rec.Key), "\uFFFD"), true
	}
	return nil, false
}
