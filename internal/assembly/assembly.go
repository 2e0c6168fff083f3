// Package assembly builds running pipelines from configuration: it is the
// one place (with cmd/sluice) that knows every concrete connector. Each
// sink and source registers a builder in its own file.
package assembly

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/sluice-dev/sluice/internal/codec"
	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/route"
	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/transform"
)

// Built is a pipeline with the connectors it owns.
type Built struct {
	Config   config.Pipeline
	Pipeline *pipeline.Pipeline
	Source   connector.Source
	Sink     connector.Sink
	closers  []func(context.Context) error
}

// Close releases the sink, the dead-letter destination and the source's
// client, after Run returned.
func (b *Built) Close(ctx context.Context) error {
	var errs []error
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i](ctx))
	}
	return errors.Join(errs...)
}

// sinkBuilder builds the sink if the config names its kind; ok reports
// whether it did.
type sinkBuilder func(ctx context.Context, p *config.Pipeline, log *slog.Logger) (s connector.Sink, ok bool, err error)

// sourceBuilder builds the source if the config names its kind.
type sourceBuilder func(ctx context.Context, p *config.Pipeline, sink connector.Sink, log *slog.Logger) (src connector.Source, maxPoll int, ok bool, err error)

var (
	sinkBuilders   []sinkBuilder
	sourceBuilders []sourceBuilder
)

// Build creates the connectors and the pipeline for p. Nothing runs until
// the caller runs Built.Pipeline.
func Build(ctx context.Context, p config.Pipeline, log *slog.Logger) (*Built, error) {
	if log == nil {
		log = slog.Default()
	}
	plog := log // the engine scopes its own logger by pipeline name
	log = log.With("pipeline", p.Name)
	b := &Built{Config: p}
	fail := func(err error) (*Built, error) {
		_ = b.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("building pipeline %s: %w", p.Name, err)
	}

	dec, err := newDecoder(p.Format)
	if err != nil {
		return fail(err)
	}
	// Compiled once here (validate compiled them too, but kept nothing).
	chain, err := transform.Compile(p.Transforms)
	if err != nil {
		return fail(err)
	}
	var transformer connector.Transformer
	if chain != nil {
		transformer = chain
	}
	if len(p.Sinks) > 0 {
		s, err := buildRoutedSinks(ctx, &p, log)
		if err != nil {
			return fail(err)
		}
		b.Sink = s
		b.closers = append(b.closers, s.Close)
	} else {
		s, err := buildSink(ctx, &p, log)
		if err != nil {
			return fail(err)
		}
		b.Sink = s
		b.closers = append(b.closers, s.Close)
	}
	if vs, ok := b.Sink.(connector.FieldVisitorSink); ok && vs.VisitsFields() {
		if transformer != nil {
			return fail(errors.New("the sink takes values undecoded, which transforms cannot read"))
		}
		f := p.Format
		f.Value = "raw" // the sink decodes values itself, field by field
		if dec, err = newDecoder(f); err != nil {
			return fail(err)
		}
	}
	if chain.RawJSON() && rawJSONSink(&p) {
		// The chain reads JSON values undecoded and hands the sink their
		// new bytes (transform.Chain.TransformJSON): decode keys only.
		f := p.Format
		f.Value = "raw"
		if dec, err = newDecoder(f); err != nil {
			return fail(err)
		}
		transformer = chain.JSONTransformer()
	}
	var maxPoll int
	for _, build := range sourceBuilders {
		src, mp, ok, err := build(ctx, &p, b.Sink, log)
		if err != nil {
			return fail(err)
		}
		if ok {
			b.Source, maxPoll = src, mp
			if c, ok := src.(interface{ Close(context.Context) error }); ok {
				b.closers = append(b.closers, c.Close)
			}
			break
		}
	}
	if b.Source == nil {
		return fail(errors.New("no source configured"))
	}
	var dlq connector.DeadLetter
	if p.OnError == config.OnErrorDLQ {
		dlq, err = newDeadLetter(ctx, &p, log)
		if err != nil {
			return fail(err)
		}
		b.closers = append(b.closers, dlq.Close)
	}
	consumers := p.Source.Consumers()
	workers, by := 1, pipeline.Distribution("")
	if par := p.Parallelism; par != nil {
		workers, by = par.Workers, pipeline.Distribution(par.By)
	}
	pl, err := pipeline.New(pipeline.Options{
		Name:               p.Name,
		Source:             b.Source,
		Consumers:          consumers,
		Decoder:            dec,
		Transformer:        transformer,
		Sink:               b.Sink,
		DeadLetter:         dlq,
		OnError:            pipeline.OnError(p.OnError),
		MaxPollRecords:     maxPoll,
		BatchRecords:       p.Batch.MaxRecords,
		BatchBytes:         p.Batch.MaxBytes,
		Linger:             p.Batch.Linger,
		MaxInFlightRecords: p.Limits.MaxInFlightRecords,
		MaxInFlightBytes:   p.Limits.MaxInFlightBytes,
		ShutdownTimeout:    p.ShutdownTimeout,
		MaxRetryTime:       p.MaxRetryTime,
		Workers:            workers,
		By:                 by,
		Timestamp: pipeline.TimestampPolicy{Policy: p.Timestamp.Policy, Field: p.Timestamp.Field,
			Format: p.Timestamp.Format},
		IdlePartitionTimeout: p.Timestamp.IdlePartitionTimeout,
		Logger:               plog,
	})
	if err != nil {
		return fail(err)
	}
	b.Pipeline = pl
	return b, nil
}

// buildSink builds the one sink p.Sink names.
func buildSink(ctx context.Context, p *config.Pipeline, log *slog.Logger) (connector.Sink, error) {
	for _, build := range sinkBuilders {
		s, ok, err := build(ctx, p, log)
		if err != nil {
			return nil, err
		}
		if ok {
			return s, nil
		}
	}
	return nil, errors.New("no sink configured")
}

// buildRoutedSinks builds every named sink and the route.Sink over them.
// Each is built as the sink of a pipeline named "<pipeline>.<sink>", so
// that what a sink keeps per pipeline (SQL bookkeeping, merge locks) is
// its own.
func buildRoutedSinks(ctx context.Context, p *config.Pipeline, log *slog.Logger) (connector.Sink, error) {
	names := map[string]bool{}
	for name := range p.Sinks {
		names[name] = true
	}
	router, err := transform.CompileRouter(p.Route, names)
	if err != nil {
		return nil, err
	}
	sinks := map[string]connector.Sink{}
	closeAll := func() {
		for _, s := range sinks {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}
	for name, cfg := range p.Sinks {
		q := *p
		q.Name = p.Name + "." + name
		q.Sink = cfg
		q.Sinks = nil
		s, err := buildSink(ctx, &q, log.With("sink", name))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("sinks.%s: %w", name, err)
		}
		sinks[name] = s
	}
	return route.New(router, sinks), nil
}

// fieldVisitor decodes values field by field for sinks that take them
// undecoded (connector.FieldVisitorSink): nil unless values are JSON or
// Avro records.
func fieldVisitor(f config.Format) (connector.FieldVisitor, error) {
	if f.Value != "json" && f.Value != "avro-confluent" {
		return nil, nil
	}
	f.Key = "raw" // keys stay with the engine's decoder
	dec, err := codec.NewDecoder(CodecOptions(f))
	if err != nil {
		return nil, err
	}
	return dec, nil
}

// rawJSONSink reports whether p's records may reach its sink as JSON bytes
// the transforms reshaped without decoding (connector.Record.Reshaped):
// JSON values into one Kafka sink that encodes JSON to a fixed topic, and
// nothing between decode and sink that reads the decoded fields (a
// timestamp field, routes, a topic template over the value).
func rawJSONSink(p *config.Pipeline) bool {
	k := p.Sink.Kafka
	return p.Format.Value == "json" && len(p.Sinks) == 0 && !p.Timestamp.NeedsFields() &&
		k != nil && k.Format != nil && k.Format.Value == "json" && !strings.Contains(k.Topic, "{{")
}

// newDecoder builds the key/value decoder for the format block.
func newDecoder(f config.Format) (codec.Decoder, error) {
	if (f.Key == "" || f.Key == "raw") && (f.Value == "" || f.Value == "raw") {
		return codec.Raw{}, nil
	}
	return codec.NewDecoder(CodecOptions(f))
}

// CodecOptions maps the format block to the codec's options.
func CodecOptions(f config.Format) codec.Options {
	o := codec.Options{
		Key:             codec.Format(f.Key),
		Value:           codec.Format(f.Value),
		ReaderSchema:    f.ReaderSchema,
		SubjectStrategy: codec.SubjectStrategy(f.SubjectStrategy),
		AutoRegister:    f.AutoRegister,
	}
	if r := f.SchemaRegistry; r != nil {
		o.SchemaRegistry = codec.RegistryOptions{URL: r.URL, Username: r.Username, Password: r.Password, BearerToken: r.BearerToken, Timeout: r.Timeout}
		if t := r.TLS; t != nil {
			o.SchemaRegistry.TLS = codec.TLSOptions{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
		}
	}
	return o
}
