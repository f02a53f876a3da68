"""Brook's client (`brook produce` / `brook consume`) and real clients, both directions, against
Brook's broker: confluent-kafka writes with every codec, keys and headers and `brook consume` reads
it back exactly; `brook produce` writes with every --compression and confluent-kafka and
kafka-python read it back exactly; a key lands on the partition librdkafka's `murmur2_random`
(Java's partitioner) picks."""

from __future__ import annotations

import struct
import subprocess
from collections import defaultdict

import pytest
from confluent_kafka import Producer
from kafka import KafkaConsumer, TopicPartition

from brookutil import create_topic, java_partition, read_all, unique
from conftest import broker_binary

CODECS = ["gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def brook(args: list[str], stdin: str | None = None, timeout: float = 60) -> str:
    r = subprocess.run([str(broker_binary())] + args, input=stdin, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"brook {' '.join(args[:1])} exited {r.returncode}:\n{r.stderr[-3000:]}"
    return r.stdout


def segment_codecs(data_dir, topic: str) -> set[int]:
    """The codec ids (attribute bits 0-2) of every record batch in `topic`'s segment files."""
    codecs = set()
    for seg in sorted(data_dir.rglob("*.log")):
        if topic not in str(seg.relative_to(data_dir)):
            continue
        buf = seg.read_bytes()
        pos = 0
        while pos + 61 <= len(buf):
            length = struct.unpack_from(">i", buf, pos + 8)[0]
            if length <= 0:
                break
            codecs.add(struct.unpack_from(">h", buf, pos + 21)[0] & 0x7)
            pos += 12 + length
    return codecs


@pytest.mark.parametrize("codec", CODECS)
def test_brook_consume_reads_confluent_topic_exactly(broker, codec):
    bootstrap, data_dir, _ = broker
    topic = unique(f"cf2brook-{codec}")
    create_topic(bootstrap, topic, 3)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                  "compression.type": codec, "linger.ms": 5, "partitioner": "murmur2_random"})
    expected, errors = [], []

    def report(headers):
        def on_delivery(err, msg):
            if err is not None:
                errors.append(err)
                return
            hdrs = ",".join(k if v is None else f"{k}={v.decode()}" for k, v in headers)
            expected.append((msg.partition(), msg.offset(), (msg.key() or b"").decode(), msg.value().decode(), hdrs))
        return on_delivery

    total = 400
    for i in range(total):
        key = None if i % 50 == 0 else f"key-{i % 17}".encode()
        headers = [("seq", str(i).encode()), ("codec", codec.encode())]
        if i % 3 == 0:
            headers += [("dup", b"a"), ("dup", b"b"), ("nullv", None)]
        if i % 7 == 0:
            headers = []
        p.produce(topic, key=key, value=f"{codec}-value-{i:05d}-{'x' * (i % 40)}".encode(), headers=headers,
                  on_delivery=report(headers))
        p.poll(0)
    assert p.flush(30) == 0 and not errors, f"confluent-kafka delivery failed: {errors[:3]}"
    del p
    assert segment_codecs(data_dir, topic) == {CODEC_IDS[codec]}, "the broker did not store compressed batches"

    out = brook(["consume", "--bootstrap", bootstrap, "--topic", topic, "--from-beginning", "--count", str(total),
                 "--format", r"%p\t%o\t%k\t%v\t%h"])
    got = []
    for line in out.splitlines():
        part, off, key, value, hdrs = line.split("\t")
        got.append((int(part), int(off), key, value, hdrs))
    assert len(got) == total, f"brook consume printed {len(got)} records, expected {total}"
    assert sorted(got) == sorted(expected)
    by_part = defaultdict(list)
    for part, off, *_ in got:
        by_part[part].append(off)
    for part, offs in by_part.items():
        assert offs == sorted(offs), f"partition {part} printed out of order"


@pytest.mark.parametrize("codec", ["none"] + CODECS)
def test_brook_produce_read_by_confluent_and_kafka_python(broker, codec):
    bootstrap, data_dir, _ = broker
    topic = unique(f"brook2peers-{codec}")
    partitions = 3
    create_topic(bootstrap, topic, partitions)
    total = 1200
    lines = [(f"key-{i % 29}", f"{codec}:{i:05d}:{'y' * (i % 60)}") for i in range(total)]
    brook(["produce", "--bootstrap", bootstrap, "--topic", topic, "--key-separator", "|", "--compression", codec],
          stdin="".join(f"{k}|{v}\n" for k, v in lines))
    assert segment_codecs(data_dir, topic) == {CODEC_IDS[codec]}, f"batches not stored as {codec}"

    def check(records, who):
        assert len(records) == total, f"{who} read {len(records)} records, expected {total}"
        per_part = defaultdict(list)
        for part, off, key, value in sorted(records):
            assert part == java_partition(key, partitions), f"{who}: key {key!r} on partition {part}"
            per_part[part].append((key.decode(), value.decode()))
        # Lines of one partition come back in the order they were written.
        for part, recs in per_part.items():
            assert recs == [kv for kv in lines if java_partition(kv[0].encode(), partitions) == part], \
                f"{who}: partition {part} differs from what was produced"

    check([(r.partition, r.offset, r.key, r.value) for r in read_all(bootstrap, topic, partitions)], "confluent-kafka")

    kc = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                       consumer_timeout_ms=3000, request_timeout_ms=15000, client_id="interop-kp-reader")
    try:
        kc.assign([TopicPartition(topic, p) for p in range(partitions)])
        kc.seek_to_beginning()
        got = [(m.partition, m.offset, m.key, m.value) for m in kc]
    finally:
        kc.close()
    check(got, "kafka-python")


def test_same_key_same_partition_as_librdkafka_murmur2_random(broker):
    bootstrap, _, _ = broker
    partitions = 7
    a, b = unique("part-brook"), unique("part-rdkafka")
    create_topic(bootstrap, a, partitions)
    create_topic(bootstrap, b, partitions)
    keys = [f"customer-{i}" for i in range(300)] + ["a", "ab", "abc", "ключ", "x" * 100]
    brook(["produce", "--bootstrap", bootstrap, "--topic", a, "--key-separator", "|"],
          stdin="".join(f"{k}|{i}\n" for i, k in enumerate(keys)))
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5})
    for i, k in enumerate(keys):
        p.produce(b, key=k.encode(), value=str(i).encode())
    assert p.flush(30) == 0
    del p
    brook_place = {r.key: r.partition for r in read_all(bootstrap, a, partitions)}
    rdk_place = {r.key: r.partition for r in read_all(bootstrap, b, partitions)}
    assert len(brook_place) == len(keys) == len(rdk_place)
    differ = [(k, brook_place[k], rdk_place[k]) for k in rdk_place if brook_place[k] != rdk_place[k]]
    assert not differ, f"{len(differ)} keys placed differently by Brook and librdkafka, e.g. {differ[:5]}"
    assert len(set(brook_place.values())) == partitions, "keys did not spread over every partition"
    assert all(part == java_partition(k, partitions) for k, part in brook_place.items())
