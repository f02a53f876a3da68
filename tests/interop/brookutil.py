"""Small helpers shared by the interop tests (no pytest fixtures here)."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(cond, timeout: float, what: str, interval: float = 0.1):
    """Polls `cond()` until truthy; returns its value or raises AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def admin(bootstrap: str, **conf) -> AdminClient:
    c = {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000}
    c.update(conf)
    return AdminClient(c)


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None,
                 timeout: float = 20.0) -> None:
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                   config=config or {})], operation_timeout=timeout, request_timeout=timeout)
    fs[name].result(timeout=timeout)
    wait_for(lambda: topic_partitions(bootstrap, name) == partitions, 15,
             f"metadata to show topic {name} with {partitions} partitions")


def topic_partitions(bootstrap: str, name: str, a: AdminClient | None = None) -> int | None:
    md = (a or admin(bootstrap)).list_topics(timeout=10)
    t = md.topics.get(name)
    if t is None or t.error is not None:
        return None
    return len(t.partitions)


def base_consumer_conf(bootstrap: str, group: str | None = None, **extra) -> dict:
    c = {
        "bootstrap.servers": bootstrap,
        "group.id": group or unique("reader"),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "socket.timeout.ms": 10000,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
    }
    c.update(extra)
    return c


def watermarks(bootstrap: str, topic: str, partitions: int, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    c = Consumer(base_consumer_conf(bootstrap))
    try:
        return {p: tuple(c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout, cached=False))
                for p in range(partitions)}
    finally:
        c.close()


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple | None


def read_all(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> list[Rec]:
    """Reads every partition of `topic` from its low to its high watermark (assign, no group)."""
    marks = watermarks(bootstrap, topic, partitions)
    c = Consumer(base_consumer_conf(bootstrap))
    out: list[Rec] = []
    try:
        todo = {p for p, (lo, hi) in marks.items() if hi > lo}
        c.assign([TopicPartition(topic, p, marks[p][0]) for p in todo])
        next_off = {p: marks[p][0] for p in todo}
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise AssertionError(f"read_all({topic}) timed out; still missing partitions "
                                     f"{ {p: (next_off[p], marks[p][1]) for p in todo} }")
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    raise AssertionError(f"consume error on {topic}: {m.error()}")
                hdrs = m.headers()
                out.append(Rec(m.partition(), m.offset(), m.key(), m.value(),
                               tuple(hdrs) if hdrs is not None else None))
                next_off[m.partition()] = m.offset() + 1
                if m.offset() + 1 >= marks[m.partition()][1]:
                    todo.discard(m.partition())
    finally:
        c.close()
    return out


def murmur2(data: bytes) -> int:
    """Java Kafka's `Utils.murmur2` (seed 0x9747b28c), as a signed 32-bit int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = (data[i4] & 0xFF) + ((data[i4 + 1] & 0xFF) << 8) + ((data[i4 + 2] & 0xFF) << 16) + ((data[i4 + 3] & 0xFF) << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    extra = length % 4
    idx = length & ~3
    if extra == 3:
        h ^= (data[idx + 2] & 0xFF) << 16
    if extra >= 2:
        h ^= (data[idx + 1] & 0xFF) << 8
    if extra >= 1:
        h ^= data[idx] & 0xFF
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def kerr_code(exc: BaseException):
    """The KafkaError code carried by an exception from a confluent-kafka future, or None."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code()
    return None


def log_bytes(data_dir, topic: str) -> tuple[int, int]:
    """(total size, number) of the `.log` segment files under directories named after `topic`."""
    total, found = 0, 0
    for root, _, files in os.walk(data_dir):
        if topic not in os.path.relpath(root, data_dir):
            continue
        for f in files:
            if f.endswith(".log"):
                found += 1
                total += os.stat(os.path.join(root, f)).st_size
    return total, found
