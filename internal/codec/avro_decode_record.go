package codec

import (
	"fmt"
	"time"

	"github.com/hamba/avro/v2"
)

// fieldStep is one step of a record decoder, in writer order: decode a
// field into name, or decode and drop a field the reader does not have.
type fieldStep struct {
	name string
	dec  *valueDecoder
	skip bool
}

// defaultField is a reader field the writer did not have.
type defaultField struct {
	name string
	// value is shared when immutable (nil, numbers, strings, times);
	// otherwise fresh is decoded from the default's encoding every time, so
	// that no two records share a map or slice.
	value any
	fresh func() any
}

func (c *decoderCompiler) record(w, rd *avro.RecordSchema) (*valueDecoder, error) {
	key := [2]string{w.FullName(), rd.FullName()}
	if d, ok := c.records[key]; ok {
		return d, nil
	}
	d := &valueDecoder{}
	c.records[key] = d

	var (
		steps    []fieldStep
		defaults []defaultField
		width    int
		matched  = map[string]bool{}
	)
	for _, wf := range w.Fields() {
		rf := readerField(rd, wf)
		if rf == nil {
			dec, err := c.compile(wf.Type(), wf.Type())
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", wf.Name(), err)
			}
			steps = append(steps, fieldStep{name: wf.Name(), dec: dec, skip: true})
			width += dec.width
			continue
		}
		matched[rf.Name()] = true
		dec, err := c.compile(wf.Type(), rf.Type())
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", wf.Name(), err)
		}
		steps = append(steps, fieldStep{name: rf.Name(), dec: dec})
		width += dec.width
	}
	for _, rf := range rd.Fields() {
		if matched[rf.Name()] {
			continue
		}
		if !rf.HasDefault() {
			return nil, fmt.Errorf("reader field %s is not in the writer schema and has no default", rf.Name())
		}
		df, err := c.defaultOf(rf)
		if err != nil {
			return nil, err
		}
		defaults = append(defaults, df)
	}
	size := len(steps) + len(defaults)
	d.width = width
	// each decodes the record's fields in writer order, then the reader's
	// defaults, handing each to set; false on a decode error.
	each := func(r *avroReader, set func(name string, v any)) bool {
		if !r.enter() {
			return false
		}
		for i := range steps {
			s := &steps[i]
			v := s.dec.decode(r)
			if r.err != nil {
				r.within(s.name)
				r.leave()
				return false
			}
			if !s.skip {
				set(s.name, v)
			}
		}
		for i := range defaults {
			df := &defaults[i]
			if df.fresh != nil {
				set(df.name, df.fresh())
			} else {
				set(df.name, df.value)
			}
		}
		r.leave()
		return true
	}
	d.decode = func(r *avroReader) any {
		out := make(map[string]any, size)
		if !each(r, func(name string, v any) { out[name] = v }) {
			return nil
		}
		return out
	}
	d.fields = func(r *avroReader) {
		each(r, r.addMember)
	}
	return d, nil
}

// readerField finds the reader field for a writer field: same name, or the
// writer's name among the reader field's aliases.
func readerField(rd *avro.RecordSchema, wf *avro.Field) *avro.Field {
	for _, f := range rd.Fields() {
		if f.Name() == wf.Name() {
			return f
		}
	}
	for _, f := range rd.Fields() {
		for _, a := range f.Aliases() {
			if a == wf.Name() {
				return f
			}
		}
	}
	return nil
}

// defaultOf turns a field's default (as hamba parsed it from JSON) into the
// value a record written with it would decode to, by encoding it with the
// field's schema and decoding that: one code path, one representation.
func (c *decoderCompiler) defaultOf(f *avro.Field) (defaultField, error) {
	enc, err := compileEncoder(f.Type())
	if err != nil {
		return defaultField{}, fmt.Errorf("field %s default: %w", f.Name(), err)
	}
	w := &avroWriter{}
	if err := enc.encode(w, f.Default(), defaultUnion); err != nil {
		return defaultField{}, fmt.Errorf("field %s default: %w", f.Name(), err)
	}
	dec, err := c.compile(f.Type(), f.Type())
	if err != nil {
		return defaultField{}, fmt.Errorf("field %s default: %w", f.Name(), err)
	}
	encoded := w.buf
	decodeDefault := func() any {
		var r avroReader
		r.reset(encoded)
		return dec.decode(&r)
	}
	var r avroReader
	r.reset(encoded)
	v := dec.decode(&r)
	if r.err != nil {
		return defaultField{}, fmt.Errorf("field %s default: %w", f.Name(), r.err)
	}
	switch v.(type) {
	case nil, bool, int64, float64, string, time.Time, time.Duration:
		return defaultField{name: f.Name(), value: v}, nil
	}
	return defaultField{name: f.Name(), fresh: decodeDefault}, nil
}
