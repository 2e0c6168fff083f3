package config

import (
	"fmt"
	"maps"
	"slices"
)

// Parallelism writes a consumer's records to the sink on several workers,
// beyond what the partition count allows (a 1-partition topic feeding a
// slow sink is no longer stuck at one writer).
type Parallelism struct {
	// Workers is the number of sink writers per consumer, 1-256 (the
	// pipeline has consumers x workers writers). Required.
	Workers int `yaml:"workers" min:"1" max:"256" doc:"Sink writers per consumer (the pipeline has consumers x workers writers); required."`
	// By says which worker writes a record: key (default; the same key
	// always goes to the same worker, in offset order; a record without a
	// key goes by its partition), partition (a partition's records stay
	// in order), or round_robin (any free worker takes the next batch; no
	// order; needs allow_duplicates: true, and is its default).
	By string `yaml:"by" enum:"key|partition|round_robin" doc:"Which worker writes a record: key (same key, same worker, in offset order; no key: by partition), partition, or round_robin (no order; needs allow_duplicates). Default key, or round_robin with allow_duplicates."`
}

const (
	ByKey        = "key"
	ByPartition  = "partition"
	ByRoundRobin = "round_robin"

	// MaxWorkers caps parallelism.workers: records are spread over 256
	// slots (see the pipeline package), so more workers would sit idle.
	MaxWorkers = 256
)

func (p *Pipeline) applyParallelismDefaults() {
	if p.Parallelism == nil || p.Parallelism.By != "" {
		return
	}
	p.Parallelism.By = ByKey
	if p.AllowDuplicates {
		p.Parallelism.By = ByRoundRobin
	}
}

// validateParallelism checks parallelism and allow_duplicates against
// delivery and the sink: exactly-once with several workers is kept only
// where the sink can deduplicate per slot (the SQL sinks) or spreads a
// whole batch's transaction over the workers itself (a single Kafka sink).
func (p *Pipeline) validateParallelism(v *validator) {
	if p.AllowDuplicates {
		if p.Delivery == ExactlyOnce {
			v.add("allow_duplicates", "contradicts delivery: exactly_once; remove one of them")
		}
		if p.Parallelism == nil {
			v.add("allow_duplicates", "only lets parallelism.by be round_robin; set parallelism.workers too, or remove it")
		}
	}
	par := p.Parallelism
	if par == nil {
		return
	}
	pv := v.sub("parallelism")
	if par.By == ByRoundRobin {
		switch {
		case p.Delivery == ExactlyOnce:
			pv.add("by", "round_robin writes one partition's records on several workers in any order, which stored offsets cannot deduplicate; with delivery: exactly_once use by: key or by: partition")
		case !p.AllowDuplicates:
			pv.add("by", "round_robin gives up per-key order; set allow_duplicates: true to accept that, or use by: key")
		}
	}
	if p.Delivery != ExactlyOnce || par.Workers <= 1 {
		return
	}
	// A Kafka sink alone spreads each transaction's batch over the
	// workers itself (kafka.Sink.WriteSpread); a route's Kafka sink gets
	// its share of each lane's batch, and would commit offsets past
	// records of other lanes.
	for _, name := range slices.Sorted(maps.Keys(p.Sinks)) {
		if p.Sinks[name].Kafka != nil {
			pv.add("workers", fmt.Sprintf("delivery: exactly_once into the routed kafka sink %s commits the consumer's offsets in the transaction of each batch, which with several workers would pass records other workers have not written; use workers: 1, a single kafka sink, or delivery: at_least_once", name))
		}
	}
}
