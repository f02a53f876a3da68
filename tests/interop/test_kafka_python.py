"""kafka-python 3 (pure Python; Java's murmur2 partitioner, ApiVersions v4 first) against the broker."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from brookutil import java_partition, read_all, unique

PARTITIONS = 5


def _create(bootstrap, topic, partitions=PARTITIONS):
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000, client_id="interop-admin")
    try:
        a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)], timeout_ms=15000)
        try:
            a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)], timeout_ms=15000)
        except TopicAlreadyExistsError:
            pass
        else:
            raise AssertionError("creating an existing topic did not raise TopicAlreadyExistsError")
        assert topic in a.list_topics()
    finally:
        a.close()


def test_kafka_python_produce_murmur2_and_group_consume(broker):
    bootstrap, _, _ = broker
    topic, group = unique("kp"), unique("kp-group")
    _create(bootstrap, topic)

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, request_timeout_ms=15000,
                             max_block_ms=30000, client_id="interop-kp")
    keys = [f"user-{i}".encode() for i in range(60)] + [b"", b"a", b"\x00\xff", "ключ".encode()]
    sent = []  # (key, value, partition, offset)
    try:
        futures = []
        for i in range(600):
            key = keys[i % len(keys)]
            value = f"v{i}".encode()
            futures.append((key, value, producer.send(topic, key=key, value=value,
                                                      headers=[("i", str(i).encode())])))
        producer.flush(timeout=60)
        for key, value, f in futures:
            md = f.get(timeout=30)
            sent.append((key, value, md.partition, md.offset))
    finally:
        producer.close(timeout=10)

    # kafka-python's default partitioner is Java's murmur2 one.
    for key, value, part, _ in sent:
        assert part == java_partition(key, PARTITIONS), f"key {key!r}: client chose {part}"
    assert len({p for *_, p, _ in sent}) > 1, "all keys landed on one partition"

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=2000, session_timeout_ms=10000,
                             heartbeat_interval_ms=1000, request_timeout_ms=30000, client_id="interop-kc")
    got = []
    try:
        deadline = time.monotonic() + 90
        while len(got) < len(sent) and time.monotonic() < deadline:
            # Long poll timeouts on purpose: kafka-python 3.0.12 can lose a group join that
            # completes just after a short poll's deadline (it then never applies its assignment
            # and stops heartbeating).
            for recs in consumer.poll(timeout_ms=3000, max_records=500).values():
                got.extend(recs)
        assert len(got) == len(sent), f"consumed {len(got)} of {len(sent)}"
        consumer.commit()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        for tp, end in ends.items():
            assert consumer.committed(tp) == end, f"{tp}: committed {consumer.committed(tp)} != end {end}"
    finally:
        consumer.close()

    # The broker stores every record where the client put it, with its key, value and headers.
    expected = {(p, o): (k, v) for k, v, p, o in sent}
    for r in got:
        assert (r.partition, r.offset) in expected, f"unexpected record at {r.partition}/{r.offset}"
        k, v = expected[(r.partition, r.offset)]
        assert (r.key or b"") == k and r.value == v, f"{r.partition}/{r.offset}: {r.key!r}={r.value!r} vs {k!r}={v!r}"
        assert r.partition == java_partition(r.key or b"", PARTITIONS)
        assert [h[0] for h in r.headers] == ["i"]
    per_part = {}
    for r in got:
        per_part.setdefault(r.partition, []).append(r.offset)
    for p, offs in per_part.items():
        assert offs == list(range(len(offs))), f"partition {p} not read in offset order"

    # And an independent client (librdkafka) sees the same placement.
    for r in read_all(bootstrap, topic, PARTITIONS):
        assert r.partition == java_partition(r.key or b"", PARTITIONS)

    # A new member of the same group starts at the committed (= end) offsets: nothing to read.
    c2 = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                       enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=1000,
                       request_timeout_ms=30000)
    try:
        extra = []
        deadline = time.monotonic() + 30
        while len(c2.assignment()) < PARTITIONS and time.monotonic() < deadline:
            for recs in c2.poll(timeout_ms=3000).values():
                extra.extend(recs)
        assert len(c2.assignment()) == PARTITIONS, f"second consumer assigned {c2.assignment()}"
        for _ in range(3):
            for recs in c2.poll(timeout_ms=1000).values():
                extra.extend(recs)
        assert extra == [], f"re-read {len(extra)} committed records"
        for tp in c2.assignment():
            assert c2.position(tp) == ends[tp]
    finally:
        c2.close()
