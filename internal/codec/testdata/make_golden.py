#!/usr/bin/python3
"""Golden vectors for Sluice's avro-confluent decoder, made by Confluent's own
serializer.

Usage: make_golden.py REGISTRY_URL OUT_DIR

REGISTRY_URL is a Confluent-compatible schema registry (the Go helper
TestMakeGoldenVectors starts Sluice's own, internal/registry, and runs this
script: SLUICE_MAKE_GOLDEN=1 go test -run TestMakeGoldenVectors ./internal/codec/).
For each case it registers the schemas through the serializer, serialises
the records, and writes OUT_DIR/<case>.json with:

  schemas:  what the registry serves for each id used (subject, version, id,
            schema text), so the Go test can serve them without Python;
  records:  the wire-format bytes (hex) and the expected decoded value in a
            tagged JSON form (see tag()), computed here from the input.

The serializer is confluent_kafka.schema_registry.avro.AvroSerializer when
fastavro is importable; Debian (bookworm) packages no fastavro, so there it
is confluent_kafka's MessageSerializer (the same wire format, with Apache
Avro's python3-avro as the encoder). Debian: apt-get install -y
python3-confluent-kafka python3-avro python3-requests.
"""

import datetime
import decimal
import json
import os
import sys
import urllib.request
import uuid
import warnings

warnings.simplefilter("ignore")  # python3-avro warns about local-timestamp-*

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class LocalTimestamp(int):
    """A local-timestamp long: python3-avro 1.11 does not know the logical
    type, so it writes the number; Sluice decodes it as a time."""

    def __new__(cls, value, unit_us):
        obj = int.__new__(cls, value)
        obj.unit_us = unit_us
        return obj


def tag(v):
    """The expected decoded value, in a JSON form that keeps the type."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, LocalTimestamp):
        return {"$timestamp_us": str(int(v) * v.unit_us)}
    if isinstance(v, int):
        return {"$int": str(v)}
    if isinstance(v, float):
        return {"$float": repr(v)}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, decimal.Decimal):
        return {"$decimal": str(v)}
    if isinstance(v, datetime.datetime):
        d = v - EPOCH
        return {"$timestamp_us": str((d.days * 86400 + d.seconds) * 1000000 + d.microseconds)}
    if isinstance(v, datetime.date):
        return {"$date": v.isoformat()}
    if isinstance(v, datetime.time):
        us = ((v.hour * 60 + v.minute) * 60 + v.second) * 1000000 + v.microsecond
        return {"$time_us": str(us)}
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {k: tag(x) for k, x in v.items()}
    if isinstance(v, list):
        return [tag(x) for x in v]
    raise TypeError("cannot tag %r" % (v,))


def utc(*args):
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


ADDRESS = {
    "type": "record", "name": "Address", "namespace": "com.example.golden",
    "fields": [
        {"name": "street", "type": "string"},
        {"name": "zip", "type": ["null", "string"], "default": None},
        {"name": "geo", "type": {"type": "record", "name": "Geo",
                                 "fields": [{"name": "lat", "type": "double"},
                                            {"name": "lon", "type": "double"}]}},
    ],
}

ALL_TYPES = {
    "type": "record", "name": "AllTypes", "namespace": "com.example.golden",
    "doc": "every Avro type and logical type Sluice decodes",
    "fields": [
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "s", "type": "string", "doc": "a string"},
        {"name": "by", "type": "bytes"},
        {"name": "e", "type": {"type": "enum", "name": "Suit", "symbols": ["SPADES", "HEARTS", "DIAMONDS", "CLUBS"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "Tag4", "size": 4}},
        {"name": "arr", "type": {"type": "array", "items": "long"}},
        {"name": "m", "type": {"type": "map", "values": "string"}},
        {"name": "address", "type": ADDRESS},
        {"name": "items", "type": {"type": "array", "items": {
            "type": "record", "name": "Item",
            "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
        {"name": "opt_s", "type": ["null", "string"], "default": None},
        {"name": "opt_l", "type": ["null", "long"], "default": None},
        {"name": "opt_geo", "type": ["null", "Geo"], "default": None},
        {"name": "multi", "type": ["null", "string", "double", "long", "Address"]},
        # python3-avro writes a union value with the LAST branch that accepts
        # it, and an int is a valid double: long comes after double here.
        {"name": "multi2", "type": ["string", "boolean", "bytes"]},
        {"name": "dec_bytes", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {"name": "dec_fixed", "type": {"type": "fixed", "name": "Dec8", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4}},
        {"name": "date", "type": {"type": "int", "logicalType": "date"}},
        {"name": "tm", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "tu", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "tsm", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "tsu", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "ltsm", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "ltsu", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "map_of_arr", "type": {"type": "map", "values": {"type": "array", "items": ["null", "int"]}}},
    ],
}


def all_types_records():
    base = {
        "b": True, "i": 42, "l": 1234567890123, "f": 1.5, "d": 3.141592653589793,
        "s": "héllo, wörld ✓", "by": b"\x00\x01\xfe\xff", "e": "HEARTS", "fx": b"abcd",
        "arr": [1, -1, 0, 9007199254740993], "m": {"a": "x", "k\u00e9y": ""},
        "address": {"street": "1 Main St", "zip": "12345", "geo": {"lat": 52.5, "lon": -13.25}},
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": -3}],
        "opt_s": "present", "opt_l": 7, "opt_geo": {"lat": 0.0, "lon": 1.0},
        "multi": "a string branch", "multi2": True,
        "dec_bytes": decimal.Decimal("12345678.90"),
        "dec_fixed": decimal.Decimal("-98765.4321"),
        "date": datetime.date(2024, 2, 29),
        "tm": datetime.time(13, 45, 30, 123000),
        "tu": datetime.time(23, 59, 59, 999999),
        "tsm": utc(2024, 5, 6, 7, 8, 9, 123000),
        "tsu": utc(2024, 5, 6, 7, 8, 9, 123456),
        "ltsm": LocalTimestamp(1714979289123, 1000),
        "ltsu": LocalTimestamp(1714979289123456, 1),
        "id": "8b6f7b2e-4c1d-4a7e-9f3a-2d1c0b9a8e7f",
        "map_of_arr": {"xs": [1, None, 3], "empty": []},
    }
    edge = dict(base)
    edge.update({
        "b": False, "i": -2147483648, "l": -9223372036854775808, "f": -0.25, "d": -1e-300,
        "s": "", "by": b"", "e": "CLUBS", "fx": b"\x00\x00\x00\x00",
        "arr": [], "m": {}, "items": [],
        "address": {"street": "", "zip": None, "geo": {"lat": -90.0, "lon": 180.0}},
        "opt_s": None, "opt_l": None, "opt_geo": None,
        "multi": None, "multi2": b"\x80",
        "dec_bytes": decimal.Decimal("-0.01"),
        "dec_fixed": decimal.Decimal("0.0000"),
        "date": datetime.date(1969, 7, 20),
        "tm": datetime.time(0, 0, 0),
        "tu": datetime.time(0, 0, 0, 1),
        "tsm": utc(1965, 1, 1, 0, 0, 0, 1000),
        "tsu": utc(1969, 12, 31, 23, 59, 59, 999999),
        "ltsm": LocalTimestamp(-1, 1000),
        "ltsu": LocalTimestamp(0, 1),
        "id": "00000000-0000-0000-0000-000000000000",
        "map_of_arr": {},
    })
    big = dict(base)
    big.update({
        "i": 2147483647, "l": 9223372036854775807, "multi": 9007199254740993, "multi2": "text",
        "dec_bytes": decimal.Decimal("99999999.99"), "dec_fixed": decimal.Decimal("99999999999999.9999"),
        "arr": list(range(-300, 300, 7)), "m": {"k%d" % i: "v%d" % i for i in range(40)},
    })
    branch_double = dict(base)
    branch_double.update({"multi": 2.5})
    branch_record = dict(base)
    branch_record.update({"multi": {"street": "2 Side St", "zip": None, "geo": {"lat": 1.0, "lon": 2.0}}})
    return [base, edge, big, branch_double, branch_record]


# A schema evolved three times (four versions), each step BACKWARD
# compatible, as the registry checks.
EVOLUTION = [
    {"type": "record", "name": "Customer", "namespace": "com.example.golden", "fields": [
        {"name": "id", "type": "int"},
        {"name": "name", "type": "string"}]},
    {"type": "record", "name": "Customer", "namespace": "com.example.golden", "fields": [
        {"name": "id", "type": "int"},
        {"name": "name", "type": "string"},
        {"name": "email", "type": ["null", "string"], "default": None}]},
    {"type": "record", "name": "Customer", "namespace": "com.example.golden", "fields": [
        {"name": "id", "type": "int"},
        {"name": "name", "type": "string"},
        {"name": "email", "type": ["null", "string"], "default": None},
        {"name": "tier", "type": {"type": "enum", "name": "Tier", "symbols": ["FREE", "PRO"], "default": "FREE"}, "default": "FREE"}]},
    {"type": "record", "name": "Customer", "namespace": "com.example.golden", "fields": [
        {"name": "id", "type": "long"},
        {"name": "email", "type": ["null", "string"], "default": None},
        {"name": "tier", "type": {"type": "enum", "name": "Tier", "symbols": ["FREE", "PRO"], "default": "FREE"}, "default": "FREE"},
        {"name": "score", "type": "double", "default": 0.0}]},
]

EVOLUTION_RECORDS = [
    [{"id": 1, "name": "Ada"}],
    [{"id": 2, "name": "Brian", "email": "b@example.com"}, {"id": 3, "name": "Cleo", "email": None}],
    [{"id": 4, "name": "Dmitri", "email": None, "tier": "PRO"}],
    [{"id": 5, "email": "e@example.com", "tier": "FREE", "score": 9.75}],
]

LINKED = {"type": "record", "name": "Node", "namespace": "com.example.golden", "fields": [
    {"name": "value", "type": "long"},
    {"name": "next", "type": ["null", "Node"], "default": None}]}


def serializer_for(url):
    """Returns serialize(topic, schema_dict, record) -> bytes."""
    try:
        import fastavro  # noqa: F401
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext
    except ImportError:
        from avro.schema import parse
        from confluent_kafka.avro import CachedSchemaRegistryClient
        from confluent_kafka.avro.serializer.message_serializer import MessageSerializer

        ser = MessageSerializer(CachedSchemaRegistryClient({"url": url}))
        parsed = {}

        def serialize(topic, schema, record):
            text = json.dumps(schema)
            if text not in parsed:
                parsed[text] = parse(text)
            return ser.encode_record_with_schema(topic, parsed[text], record)

        return serialize, "confluent_kafka.avro MessageSerializer (python3-avro)"

    client = SchemaRegistryClient({"url": url})
    sers = {}

    def serialize(topic, schema, record):
        text = json.dumps(schema)
        if text not in sers:
            sers[text] = AvroSerializer(client, text)
        return sers[text](record, SerializationContext(topic, MessageField.VALUE))

    return serialize, "confluent_kafka.schema_registry.avro AvroSerializer"


def registry_get(url, path):
    with urllib.request.urlopen(url.rstrip("/") + path) as resp:
        return json.load(resp)


def schemas_used(url, ids):
    out = []
    for sid in sorted(ids):
        for sv in registry_get(url, "/schemas/ids/%d/versions" % sid):
            s = registry_get(url, "/subjects/%s/versions/%d" % (sv["subject"], sv["version"]))
            out.append({"subject": s["subject"], "version": s["version"], "id": s["id"], "schema": s["schema"]})
    return out


def write_case(url, out_dir, serialize, via, name, description, topic_records):
    records, ids = [], set()
    for topic, schema, record in topic_records:
        data = serialize(topic, schema, record)
        sid = int.from_bytes(data[1:5], "big")
        ids.add(sid)
        records.append({"topic": topic, "schema_id": sid, "hex": data.hex(), "expected": tag(record)})
    doc = {"case": name, "description": description, "serializer": via,
           "schemas": schemas_used(url, ids), "records": records}
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    url, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    serialize, via = serializer_for(url)

    write_case(url, out_dir, serialize, via, "all_types",
               "every Avro type, nested records, unions and logical types",
               [("golden-all", ALL_TYPES, r) for r in all_types_records()])

    evo = []
    for version, schema in enumerate(EVOLUTION):
        for r in EVOLUTION_RECORDS[version]:
            evo.append(("golden-evolution", schema, r))
    write_case(url, out_dir, serialize, via, "evolution",
               "one subject, a schema evolved three times; records of every version", evo)

    linked = {"value": 1, "next": {"value": 2, "next": {"value": 3, "next": None}}}
    write_case(url, out_dir, serialize, via, "recursive", "a recursive (linked list) record",
               [("golden-linked", LINKED, linked)])

    write_case(url, out_dir, serialize, via, "primitive",
               "values whose schema is not a record",
               [("golden-string", "string", "just text"),
                ("golden-long", "long", -5)])


if __name__ == "__main__":
    main()
