package bqemu

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	// Well-known types a writer schema may reference (wrappers for
	// NULLABLE scalars, Timestamp for TIMESTAMP) must be registered.
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
)

// descriptorCache compiles writer schemas. A multiplexed connection resends
// the schema whenever it switches tables, so the same few descriptors
// arrive over and over; compiling each once matters for throughput.
type descriptorCache struct {
	mu sync.Mutex
	m  map[string]protoreflect.MessageType
}

// maxCachedDescriptors bounds the cache; past it the cache starts over.
const maxCachedDescriptors = 4096

func newDescriptorCache() *descriptorCache {
	return &descriptorCache{m: make(map[string]protoreflect.MessageType)}
}

// compile turns the self-contained DescriptorProto of a writer schema (as
// managedwriter's adapt.NormalizeDescriptor makes it: nested types inside
// the root message, proto2 semantics) into a message type.
func (c *descriptorCache) compile(dp *descriptorpb.DescriptorProto) (protoreflect.MessageType, error) {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(dp)
	if err != nil {
		return nil, fmt.Errorf("encoding writer schema: %w", err)
	}
	sum := sha256.Sum256(raw)
	key := hex.EncodeToString(sum[:])
	c.mu.Lock()
	mt, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return mt, nil
	}
	md, err := buildDescriptor(dp, key)
	if err != nil {
		return nil, err
	}
	mt = dynamicpb.NewMessageType(md)
	c.mu.Lock()
	if len(c.m) >= maxCachedDescriptors {
		clear(c.m)
	}
	c.m[key] = mt
	c.mu.Unlock()
	return mt, nil
}

func buildDescriptor(dp *descriptorpb.DescriptorProto, key string) (protoreflect.MessageDescriptor, error) {
	if dp.GetName() == "" {
		return nil, fmt.Errorf("writer schema has no message name")
	}
	deps, err := wellKnownDependencies(dp)
	if err != nil {
		return nil, err
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:        proto.String("bqemu/" + key + ".proto"),
		Package:     proto.String("bqemu_" + key[:16]),
		Dependency:  deps,
		MessageType: []*descriptorpb.DescriptorProto{dp},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		return nil, fmt.Errorf("invalid proto descriptor: %w", err)
	}
	return fd.Messages().Get(0), nil
}

// wellKnownDependencies lists the files of the google.protobuf types the
// descriptor references, which a self-contained descriptor may still use.
func wellKnownDependencies(dp *descriptorpb.DescriptorProto) ([]string, error) {
	seen := map[string]bool{}
	var deps []string
	var walk func(*descriptorpb.DescriptorProto) error
	walk = func(m *descriptorpb.DescriptorProto) error {
		for _, f := range m.GetField() {
			name := f.GetTypeName()
			if !strings.HasPrefix(name, ".google.protobuf.") {
				continue
			}
			d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name[1:]))
			if err != nil {
				return fmt.Errorf("field %s references unknown type %s", f.GetName(), name)
			}
			if path := d.ParentFile().Path(); !seen[path] {
				seen[path] = true
				deps = append(deps, path)
			}
		}
		for _, n := range m.GetNestedType() {
			if err := walk(n); err != nil {
				return err
			}
		}
		return nil
	}
	return deps, walk(dp)
}
