#!/usr/bin/python3
"""Decodes Confluent wire-format Avro with Confluent's Python deserializer.

Usage: read_avro_with_python.py REGISTRY_URL < hex-lines

Reads one hex-encoded Kafka value per line and prints, per line, the
decoded record's id, user country, number of items and loadtest_version
(the field --schema-evolve adds; None before the change), tab-separated.
Used by TestAvroLoadIsReadByConfluentsDeserializer.
"""

import sys

from confluent_kafka.avro import CachedSchemaRegistryClient
from confluent_kafka.avro.serializer.message_serializer import MessageSerializer


def main():
    decode = MessageSerializer(CachedSchemaRegistryClient({"url": sys.argv[1]})).decode_message
    for line in sys.stdin:
        line = line.strip()
        if line:
            v = decode(bytes.fromhex(line))
            print("%d\t%s\t%d\t%s" % (v["id"], v["user"]["country"], len(v["items"]), v.get("loadtest_version")), flush=True)


if __name__ == "__main__":
    main()
