#!/usr/bin/python3
"""Decodes Confluent wire-format Avro with Confluent's Python deserializer.

Usage: decode_with_python.py REGISTRY_URL < hex-lines

Reads one hex-encoded Kafka value per line and prints, per line, the value
Confluent's deserializer returns, in make_golden.py's tagged JSON form.
Used by TestConfluentPythonDecodesSluiceEncoded.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import tag  # noqa: E402


def deserializer_for(url):
    try:
        import fastavro  # noqa: F401
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer
        from confluent_kafka.serialization import MessageField, SerializationContext
    except ImportError:
        from confluent_kafka.avro import CachedSchemaRegistryClient
        from confluent_kafka.avro.serializer.message_serializer import MessageSerializer

        ser = MessageSerializer(CachedSchemaRegistryClient({"url": url}))
        return ser.decode_message

    des = AvroDeserializer(SchemaRegistryClient({"url": url}))
    return lambda data: des(data, SerializationContext("t", MessageField.VALUE))


def main():
    decode = deserializer_for(sys.argv[1])
    for line in sys.stdin:
        line = line.strip()
        if line:
            print(json.dumps(tag(decode(bytes.fromhex(line)))), flush=True)


if __name__ == "__main__":
    main()
