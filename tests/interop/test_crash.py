"""kill -9 in the middle of a durable (--flush fsync) stream: nothing acknowledged is lost or doubled,
and committed group offsets survive."""

from __future__ import annotations

import threading
import time
from collections import Counter

from confluent_kafka import Consumer, Producer, TopicPartition

from brookutil import base_consumer_conf, create_topic, read_all, unique, watermarks


def test_kill9_mid_stream_keeps_every_acked_record_exactly_once(broker_factory):
    b = broker_factory(flush="fsync")
    topic = unique("crash")
    parts = 3
    create_topic(b.bootstrap, topic, parts)

    acked: set[int] = set()
    failed: dict[int, str] = {}
    lock = threading.Lock()

    def report(err, msg):
        n = int(msg.value())
        with lock:
            if err is None:
                acked.add(n)
            else:
                failed[n] = str(err)

    p = Producer({
        "bootstrap.servers": b.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "message.timeout.ms": 45000,
        "retry.backoff.ms": 100,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 500,
        "queue.buffering.max.messages": 20000,
        "socket.timeout.ms": 10000,
    })

    sent = 0
    start = time.monotonic()
    killed_at = None
    before_kill = 0
    while True:
        now = time.monotonic()
        if killed_at is None and now - start >= 1.5:
            with lock:
                before_kill = len(acked)
            b.kill()  # SIGKILL while records are in flight
            killed_at = now
        if killed_at is not None and now - killed_at >= 0.3:
            break
        try:
            p.produce(topic, key=str(sent % 97).encode(), value=str(sent).encode(), on_delivery=report)
            sent += 1
        except BufferError:
            p.poll(0.01)
        if sent % 50 == 0:
            p.poll(0)
    assert before_kill > 100, f"only {before_kill} records acknowledged before the kill; the test proves little"

    b.start()  # same port, same data dir
    left = p.flush(60)
    assert left == 0, f"{left} records never resolved after restart"
    with lock:
        acked_now, failed_now = set(acked), dict(failed)
    assert len(acked_now) + len(failed_now) == sent, (sent, len(acked_now), len(failed_now))

    recs = read_all(b.bootstrap, topic, parts, timeout=90)
    counts = Counter(int(r.value) for r in recs)
    dups = {n: c for n, c in counts.items() if c > 1}
    lost = sorted(acked_now - set(counts))
    assert not lost, f"{len(lost)} acknowledged records lost after kill -9, e.g. {lost[:10]}"
    assert not dups, f"{len(dups)} records stored more than once, e.g. {list(dups.items())[:10]}"
    assert set(counts) <= set(range(sent)), "records that were never produced"
    # Per partition, each key's records are in production order (idempotence keeps order).
    last = {}
    for r in sorted(recs, key=lambda r: (r.partition, r.offset)):
        n = int(r.value)
        k = (r.partition, r.key)
        assert n > last.get(k, -1), f"partition {r.partition} key {r.key!r}: {n} after {last[k]}"
        last[k] = n
    print(f"sent {sent}, acked {len(acked_now)} ({before_kill} before kill), failed {len(failed_now)}, "
          f"stored {len(recs)}; failure reasons: {Counter(failed_now.values()).most_common(3)}")


def test_committed_offsets_survive_kill9(broker_factory):
    b = broker_factory(flush="fsync")
    topic, group = unique("crash-grp"), unique("crash-group")
    create_topic(b.bootstrap, topic, 2)
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "acks": "all"})
    for i in range(100):
        p.produce(topic, value=str(i).encode(), partition=i % 2)
    assert p.flush(30) == 0

    commits = {0: 37, 1: 12}
    c = Consumer(base_consumer_conf(b.bootstrap, group))
    try:
        c.subscribe([topic])
        got = 0
        deadline = time.monotonic() + 60
        while got < 100 and time.monotonic() < deadline:
            got += sum(1 for m in c.consume(100, timeout=0.5) if not m.error())
        assert got == 100
        res = c.commit(offsets=[TopicPartition(topic, q, o) for q, o in commits.items()], asynchronous=False)
        assert all(tp.error is None for tp in res), res
        # More produce after the commit, so the log is not just what the group read.
        for i in range(100, 120):
            p.produce(topic, value=str(i).encode(), partition=i % 2)
        assert p.flush(30) == 0
    finally:
        c.close()  # enable.auto.commit is off: closing commits nothing more

    b.kill()
    b.start()

    assert watermarks(b.bootstrap, topic, 2) == {0: (0, 60), 1: (0, 60)}

    c2 = Consumer(base_consumer_conf(b.bootstrap, group))
    try:
        comm = c2.committed([TopicPartition(topic, q) for q in commits], timeout=20)
        assert {tp.partition: tp.offset for tp in comm} == commits
        c2.subscribe([topic])
        first = {}
        deadline = time.monotonic() + 60
        while len(first) < 2 and time.monotonic() < deadline:
            for m in c2.consume(100, timeout=0.5):
                if not m.error():
                    first.setdefault(m.partition(), m.offset())
        assert first == commits, f"group resumed at {first}, committed {commits}"
    finally:
        c2.close()
    # The records themselves also survived.
    assert len(read_all(b.bootstrap, topic, 2)) == 120
