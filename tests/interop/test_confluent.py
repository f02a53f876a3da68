"""confluent-kafka (bundled recent librdkafka): idempotent compressed produce, consumer groups with
rebalancing, and the AdminClient."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict

import pytest
from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions,
                                   NewTopic, ResourceType)

from brookutil import (admin, log_bytes, base_consumer_conf, create_topic, kerr_code, read_all, topic_partitions, unique,
                       wait_for, watermarks)

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def idempotent_producer(bootstrap: str, **extra) -> Producer:
    conf = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "socket.timeout.ms": 10000,
    }
    conf.update(extra)
    return Producer(conf)


def produce_and_confirm(p: Producer, topic: str, records, timeout: float = 60.0) -> dict:
    """Produces `records` [(key, value, headers, partition|None)], waits for every delivery report,
    returns {(partition, offset): (key, value, headers)}; asserts none failed."""
    placed, errors = {}, []

    def report(err, msg, rec):
        if err is not None:
            errors.append((rec[0], err))
        else:
            placed[(msg.partition(), msg.offset())] = rec

    for key, value, headers, part in records:
        kw = {"key": key, "value": value, "headers": headers,
              "on_delivery": (lambda rec: lambda err, msg: report(err, msg, rec))((key, value, headers))}
        if part is not None:
            kw["partition"] = part
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(timeout)
    assert left == 0, f"{left} records still undelivered after {timeout}s"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[:3]}"
    assert len(placed) == len(records), f"{len(records)} sent but {len(placed)} distinct (partition, offset)s acknowledged"
    return placed


def norm_headers(h):
    """librdkafka returns [] or None for 'no headers'; compare as tuples of (str, bytes|None)."""
    return tuple((k, v) for k, v in (h or ()))


@pytest.mark.parametrize("codec", CODECS)
def test_idempotent_compressed_produce_with_headers_round_trip(broker, codec):
    bootstrap, _, _ = broker
    topic = unique(f"cf-{codec}")
    create_topic(bootstrap, topic, 3)
    p = idempotent_producer(bootstrap, **{"compression.type": codec, "batch.num.messages": 200})
    records = []
    for i in range(1500):
        key = None if i % 101 == 0 else f"key-{i % 23}".encode()
        value = b"" if i % 97 == 0 else (f"{codec}-{i:06d}-".encode() + bytes(range(i % 50)) * 3)
        headers = [("seq", str(i).encode()), ("codec", codec.encode()), ("dup", b"a"), ("dup", b"b")]
        if i % 7 == 0:
            headers.append(("null-valued", None))
        if i % 11 == 0:
            headers = []
        # Some records name their partition, the rest go through the partitioner.
        part = (i % 3) if i % 5 == 0 else None
        records.append((key, value, headers, part))
    placed = produce_and_confirm(p, topic, records)

    got = read_all(bootstrap, topic, 3)
    assert len(got) == len(records), f"read {len(got)} records, produced {len(records)}"
    by_pos = {(r.partition, r.offset): r for r in got}
    assert set(by_pos) == set(placed), "consumed (partition, offset)s differ from acknowledged ones"
    for pos, (key, value, headers) in placed.items():
        r = by_pos[pos]
        assert r.key == key, f"{pos}: key {r.key!r} != {key!r}"
        assert (r.value or b"") == value, f"{pos}: value {r.value!r} != {value!r}"
        assert norm_headers(r.headers) == norm_headers(headers), f"{pos}: headers {r.headers!r} != {headers!r}"
    # In order per partition: the read order is by offset, offsets dense from 0, and within a
    # partition the producer's sequence ("seq" header order for records of one key) is kept.
    for part in range(3):
        offs = [r.offset for r in got if r.partition == part]
        assert offs == list(range(len(offs))), f"partition {part} offsets not dense/in order"
        seqs = defaultdict(list)
        for r in (r for r in got if r.partition == part):
            seqs[r.key].append(int(dict(norm_headers(r.headers)).get("seq", b"-1")))
        for key, s in seqs.items():
            s = [x for x in s if x >= 0]
            assert s == sorted(s), f"partition {part} key {key!r} out of order: {s[:20]}"


@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_are_stored_compressed(broker, codec):
    """The broker keeps batches as they arrived: highly compressible values take little disk."""
    bootstrap, data_dir, _ = broker
    topic = unique(f"cf-store-{codec}")
    create_topic(bootstrap, topic, 1)
    p = idempotent_producer(bootstrap, **{"compression.type": codec, "linger.ms": 50, "batch.size": 1000000})
    n, size = 2000, 1000
    produce_and_confirm(p, topic, [(None, (b"%06d" % i) + b"x" * (size - 6), None, 0) for i in range(n)])
    total, files = log_bytes(data_dir, topic)
    assert files > 0, f"no .log segment files for {topic} under {data_dir}"
    assert total < n * size // 10, f"{codec}: {total} bytes on disk for {n * size} bytes of values"
    got = read_all(bootstrap, topic, 1)
    assert [r.value for r in got] == [(b"%06d" % i) + b"x" * (size - 6) for i in range(n)]


# ------------------------------------------------------------------------------------------------
# Consumer group: 3 members on 6 partitions, one leaves mid-stream and another joins.
# ------------------------------------------------------------------------------------------------

class Member(threading.Thread):
    """One group member in its own thread: consumes, records every value seen, commits after each
    batch and on revocation."""

    def __init__(self, name, bootstrap, group, topic, seen, lock, stop_all, strategy):
        super().__init__(name=name, daemon=True)
        self.c = Consumer(base_consumer_conf(bootstrap, group, **{
            "client.id": name, "partition.assignment.strategy": strategy}))
        self.topic, self.seen, self.lock, self.stop_all = topic, seen, lock, stop_all
        self.stop_me = threading.Event()
        self.current: list[int] = []
        self.ever_assigned = False
        self.count = 0
        self.errors: list[str] = []
        self.closed = False

    def _on_assign(self, c, parts):
        if parts:
            self.ever_assigned = True

    def _on_revoke(self, c, parts):
        try:
            c.commit(asynchronous=False)
        except KafkaException as e:
            if kerr_code(e) not in (KafkaError._NO_OFFSET, KafkaError.REBALANCE_IN_PROGRESS,
                                    KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID):
                self.errors.append(f"commit on revoke: {e}")

    def run(self):
        try:
            self.c.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
            while not (self.stop_me.is_set() or self.stop_all.is_set()):
                msgs = self.c.consume(num_messages=200, timeout=0.2)
                self.current = sorted(tp.partition for tp in self.c.assignment())
                good = []
                for m in msgs:
                    if m.error():
                        self.errors.append(str(m.error()))
                    else:
                        good.append(m)
                if good:
                    with self.lock:
                        for m in good:
                            self.seen[int(m.value())] += 1
                    self.count += len(good)
                    try:
                        self.c.commit(asynchronous=False)
                    except KafkaException as e:
                        # A commit racing a rebalance may be refused; those records are re-read.
                        if kerr_code(e) not in (KafkaError._NO_OFFSET, KafkaError.REBALANCE_IN_PROGRESS,
                                                KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID,
                                                KafkaError._WAIT_COORD):
                            self.errors.append(f"commit: {e}")
            try:
                self.c.commit(asynchronous=False)
            except KafkaException as e:
                if kerr_code(e) != KafkaError._NO_OFFSET:
                    self.errors.append(f"final commit: {e}")
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            self.c.close()
            self.closed = True


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_consumer_group_rebalance_member_leaves_and_joins(broker, strategy):
    bootstrap, _, _ = broker
    topic, group = unique("cf-grp"), unique("cf-group")
    parts = 6
    create_topic(bootstrap, topic, parts)
    p = idempotent_producer(bootstrap)
    first, middle, total = 3000, 6000, 9000
    produce_and_confirm(p, topic, [(f"k{i}".encode(), str(i).encode(), None, None) for i in range(first)])

    seen, lock, stop_all = Counter(), threading.Lock(), threading.Event()

    def member(name):
        return Member(name, bootstrap, group, topic, seen, lock, stop_all, strategy)

    members = {n: member(n) for n in ("m1", "m2", "m3")}
    joined = threading.Event()
    producer_done = threading.Event()
    prod_errors = []

    def produce_paced(lo, hi):
        for i in range(lo, hi):
            while True:
                try:
                    p.produce(topic, key=f"k{i}".encode(), value=str(i).encode())
                    break
                except BufferError:
                    p.poll(0.05)
            if i % 100 == 0:
                p.poll(0)
                time.sleep(0.03)

    def producer():
        # Records keep flowing while m2 leaves; the last third is produced only after m4 has
        # joined and holds partitions, so the churn is really mid-stream.
        try:
            produce_paced(first, middle)
            if not joined.wait(90):
                raise AssertionError("m4 never joined")
            produce_paced(middle, total)
            assert p.flush(60) == 0, "producer could not deliver everything"
        except Exception as e:  # noqa: BLE001
            prod_errors.append(e)
        finally:
            producer_done.set()

    pt = threading.Thread(target=producer, daemon=True)
    try:
        for m in members.values():
            m.start()
        wait_for(lambda: all(len(m.current) == 2 for m in members.values()), 60,
                 "three members each holding 2 of the 6 partitions")
        pt.start()
        wait_for(lambda: len(seen) >= first + 500, 60, f"{first + 500} records consumed by the group")

        # m2 leaves (close() sends LeaveGroup) while the producer is still going; m4 joins.
        assert members["m2"].count > 0, "m2 consumed nothing before leaving"
        members["m2"].stop_me.set()
        wait_for(lambda: members["m2"].closed, 30, "m2 closed")
        live = [members["m1"], members["m3"]]
        wait_for(lambda: sorted(sum((m.current for m in live), [])) == list(range(parts)), 60,
                 "m1 and m3 taking over all 6 partitions after m2 left")
        m4 = members["m4"] = member("m4")
        m4.start()
        live.append(m4)
        wait_for(lambda: m4.current, 60, "m4 assigned partitions")
        joined.set()

        assert producer_done.wait(150), "producer thread did not finish"
        assert not prod_errors, prod_errors
        wait_for(lambda: len(seen) == total, 120, f"all {total} records consumed")
        wait_for(lambda: sorted(sum((m.current for m in live), [])) == list(range(parts)), 60,
                 "final assignment covers all partitions across m1, m3, m4")
        assert m4.count > 0, "the joining member consumed nothing"
        time.sleep(1.0)  # let the members' last commits land
    finally:
        joined.set()
        stop_all.set()
        for m in members.values():
            if m.is_alive():
                m.join(30)
        pt.join(30)

    errors = {n: m.errors for n, m in members.items() if m.errors}
    assert not errors, f"member errors: {errors}"
    missing = [i for i in range(total) if seen[i] == 0]
    assert not missing, f"{len(missing)} records never consumed, e.g. {missing[:10]}"
    assert set(seen) == set(range(total)), "consumed values that were never produced"

    marks = watermarks(bootstrap, topic, parts)
    assert sum(hi for _, hi in marks.values()) == total
    want = {i: marks[i][1] for i in range(parts)}

    a = admin(bootstrap)
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=15)
    got = {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == topic}
    assert got == want, f"committed (AdminClient) {got} != end offsets {want}"

    c = Consumer(base_consumer_conf(bootstrap, group))
    try:
        comm = c.committed([TopicPartition(topic, i) for i in range(parts)], timeout=15)
        assert {tp.partition: tp.offset for tp in comm} == want
    finally:
        c.close()


# ------------------------------------------------------------------------------------------------
# AdminClient
# ------------------------------------------------------------------------------------------------

def _future_error(fut, timeout=20):
    with pytest.raises(KafkaException) as ei:
        fut.result(timeout=timeout)
    return ei.value.args[0]


DYNAMIC = ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def src(entry) -> int:
    return getattr(entry.source, "value", entry.source)


def _describe(a, topic) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([res], request_timeout=15)[res].result(timeout=15)


def test_admin_create_topics_validate_only_and_errors(broker):
    bootstrap, _, _ = broker
    a = admin(bootstrap)
    t, v, bad = unique("adm-create"), unique("adm-validate"), unique("adm-bad")

    fs = a.create_topics([NewTopic(t, num_partitions=3, replication_factor=1, config={"retention.ms": "3600000"})],
                         operation_timeout=15, request_timeout=15)
    assert fs[t].result(timeout=20) is None
    wait_for(lambda: topic_partitions(bootstrap, t, a) == 3, 15, f"{t} in metadata with 3 partitions")

    # validate_only: succeeds, creates nothing.
    fs = a.create_topics([NewTopic(v, num_partitions=2, replication_factor=1)], validate_only=True,
                         request_timeout=15)
    assert fs[v].result(timeout=20) is None
    time.sleep(0.5)
    assert v not in a.list_topics(timeout=10).topics, "validate_only created the topic"

    # The same name again: TOPIC_ALREADY_EXISTS.
    err = _future_error(a.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)],
                                        request_timeout=15)[t])
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS, err
    # ... also with validate_only.
    err = _future_error(a.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)], validate_only=True,
                                        request_timeout=15)[t])
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS, err

    # A bad config value: INVALID_CONFIG, and no topic.
    err = _future_error(a.create_topics([NewTopic(bad, num_partitions=1, replication_factor=1,
                                                  config={"retention.ms": "not-a-number"})], request_timeout=15)[bad])
    assert err.code() == KafkaError.INVALID_CONFIG, err
    # An unknown config name is also rejected (INVALID_CONFIG in Kafka).
    err = _future_error(a.create_topics([NewTopic(bad, num_partitions=1, replication_factor=1,
                                                  config={"no.such.config": "1"})], request_timeout=15)[bad])
    assert err.code() == KafkaError.INVALID_CONFIG, err
    # Zero partitions: INVALID_PARTITIONS.
    err = _future_error(a.create_topics([NewTopic(bad, num_partitions=0, replication_factor=1)],
                                        request_timeout=15)[bad])
    assert err.code() == KafkaError.INVALID_PARTITIONS, err
    # Replication factor 3 on a single node: INVALID_REPLICATION_FACTOR.
    err = _future_error(a.create_topics([NewTopic(bad, num_partitions=1, replication_factor=3)],
                                        request_timeout=15)[bad])
    assert err.code() == KafkaError.INVALID_REPLICATION_FACTOR, err
    assert bad not in a.list_topics(timeout=10).topics


def test_admin_create_partitions(broker):
    bootstrap, _, _ = broker
    a = admin(bootstrap)
    t = unique("adm-parts")
    create_topic(bootstrap, t, 2)
    assert a.create_partitions([NewPartitions(t, 5)], request_timeout=15)[t].result(timeout=20) is None
    wait_for(lambda: topic_partitions(bootstrap, t, a) == 5, 15, f"{t} grown to 5 partitions")
    # The new partitions take records.
    p = idempotent_producer(bootstrap)
    produce_and_confirm(p, t, [(None, f"v{i}".encode(), None, i) for i in range(5)])
    assert {r.partition for r in read_all(bootstrap, t, 5)} == set(range(5))
    # Shrinking is refused: INVALID_PARTITIONS.
    err = _future_error(a.create_partitions([NewPartitions(t, 3)], request_timeout=15)[t])
    assert err.code() == KafkaError.INVALID_PARTITIONS, err
    # Unknown topic.
    nt = unique("adm-nope")
    err = _future_error(a.create_partitions([NewPartitions(nt, 3)], request_timeout=15)[nt])
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err


def test_admin_describe_and_alter_configs(broker):
    bootstrap, _, _ = broker
    a = admin(bootstrap)
    t = unique("adm-cfg")
    create_topic(bootstrap, t, 1, config={"retention.ms": "3600000"})

    cfg = _describe(a, t)
    assert cfg["retention.ms"].value == "3600000"
    assert src(cfg["retention.ms"]) == DYNAMIC
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["cleanup.policy"].is_default or src(cfg["cleanup.policy"]) != \
        DYNAMIC

    # Incremental SET.
    res = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", "86400000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET)])
    assert a.incremental_alter_configs([res])[res].result(timeout=15) is None
    cfg = _describe(a, t)
    assert cfg["retention.ms"].value == "86400000"
    assert cfg["max.message.bytes"].value == "2000000"

    # Incremental DELETE reverts to the default.
    res = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    assert a.incremental_alter_configs([res])[res].result(timeout=15) is None
    cfg = _describe(a, t)
    assert cfg["retention.ms"].value == "604800000", cfg["retention.ms"]
    assert src(cfg["retention.ms"]) != DYNAMIC
    assert cfg["max.message.bytes"].value == "2000000"

    # Legacy AlterConfigs replaces the whole set: max.message.bytes goes back to its default.
    res = ConfigResource(ResourceType.TOPIC, t, set_config={"retention.ms": "7200000"})
    assert a.alter_configs([res])[res].result(timeout=15) is None
    cfg = _describe(a, t)
    assert cfg["retention.ms"].value == "7200000"
    assert src(cfg["max.message.bytes"]) != DYNAMIC

    # Bad values are refused with INVALID_CONFIG and change nothing.
    res = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    err = _future_error(a.incremental_alter_configs([res])[res])
    assert err.code() == KafkaError.INVALID_CONFIG, err
    res = ConfigResource(ResourceType.TOPIC, t, set_config={"cleanup.policy": "shred"})
    err = _future_error(a.alter_configs([res])[res])
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert _describe(a, t)["retention.ms"].value == "7200000"

    # Configs survive a restart of the broker (clients closed first: see test_lifecycle.py).
    del a
    broker.restart()
    a = admin(bootstrap)
    assert _describe(a, t)["retention.ms"].value == "7200000"

    # Unknown topic.
    nt = unique("adm-nope")
    res = ConfigResource(ResourceType.TOPIC, nt)
    err = _future_error(a.describe_configs([res], request_timeout=15)[res])
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err

    # The broker's own configs.
    res = ConfigResource(ResourceType.BROKER, "1")
    bcfg = a.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    assert bcfg, "no broker configs described"


def test_admin_groups_offsets_delete_records_and_topics(broker):
    bootstrap, _, _ = broker
    a = admin(bootstrap)
    t, group = unique("adm-grp"), unique("adm-group")
    create_topic(bootstrap, t, 2)
    p = idempotent_producer(bootstrap)
    produce_and_confirm(p, t, [(None, f"v{i}".encode(), None, i % 2) for i in range(200)])

    c = Consumer(base_consumer_conf(bootstrap, group))
    try:
        c.subscribe([t])
        n = 0
        deadline = time.monotonic() + 60
        while n < 200 and time.monotonic() < deadline:
            n += sum(1 for m in c.consume(200, timeout=0.5) if not m.error())
        assert n == 200, f"group consumer read {n} of 200"
        c.commit(offsets=[TopicPartition(t, 0, 60), TopicPartition(t, 1, 45)], asynchronous=False)

        # list_consumer_groups / describe_consumer_groups while the member is alive.
        def listed():
            r = a.list_consumer_groups(request_timeout=10).result(timeout=15)
            return {g.group_id: g for g in r.valid}
        groups = wait_for(lambda: (lambda g: g if group in g else None)(listed()), 15, f"{group} listed")
        assert not groups[group].is_simple_consumer_group
        desc = a.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
        assert desc.group_id == group
        assert desc.state.name == "STABLE", desc.state
        assert len(desc.members) == 1
        assert desc.coordinator.id in a.list_topics(timeout=10).brokers, desc.coordinator
        assert sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions) == [0, 1]
        # The legacy list_groups also sees it.
        if hasattr(a, "list_groups"):
            assert group in {g.id for g in a.list_groups(timeout=10)}
    finally:
        c.close()

    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=15)
    assert {(tp.topic, tp.partition): tp.offset for tp in res.topic_partitions} == {(t, 0): 60, (t, 1): 45}
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(t, 1)])])[group] \
        .result(timeout=15)
    assert [(tp.partition, tp.offset) for tp in res.topic_partitions] == [(1, 45)]

    # After the member left the group is EMPTY but keeps its offsets.
    desc = wait_for(lambda: (lambda d: d if d.state.name == "EMPTY" else None)(
        a.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)), 20, "group EMPTY")
    assert desc.members == []

    # delete_records moves the low watermark.
    fut = a.delete_records([TopicPartition(t, 0, 40)], request_timeout=15)
    (tp, f), = fut.items()
    assert f.result(timeout=15).low_watermark == 40
    marks = watermarks(bootstrap, t, 2)
    assert marks[0] == (40, 100), marks
    assert marks[1] == (0, 100), marks
    recs = read_all(bootstrap, t, 2)
    assert min(r.offset for r in recs if r.partition == 0) == 40
    assert len(recs) == 160
    # Beyond the high watermark: OFFSET_OUT_OF_RANGE.
    fut = a.delete_records([TopicPartition(t, 1, 1000)], request_timeout=15)
    (_, f), = fut.items()
    err = _future_error(f)
    assert err.code() == KafkaError.OFFSET_OUT_OF_RANGE, err

    # delete_consumer_groups.
    fs = a.delete_consumer_groups([group], request_timeout=15)
    assert fs[group].result(timeout=15) is None
    wait_for(lambda: group not in {g.group_id for g in a.list_consumer_groups(request_timeout=10)
                                   .result(timeout=15).valid}, 15, f"{group} gone")

    # delete_topics.
    fs = a.delete_topics([t], operation_timeout=15, request_timeout=15)
    assert fs[t].result(timeout=20) is None
    wait_for(lambda: t not in a.list_topics(timeout=10).topics, 15, f"{t} gone from metadata")
    nt = unique("adm-nope")
    err = _future_error(a.delete_topics([nt], request_timeout=15)[nt])
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    # The deleted topic stays deleted across a restart (clients closed first: see test_lifecycle.py).
    del a, p
    broker.restart()
    a = admin(bootstrap)
    assert t not in a.list_topics(timeout=10).topics
