"""kcat 1.7.1 (Debian's librdkafka 2.0.2) against the broker."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from brookutil import admin, create_topic, log_bytes, read_all, unique, wait_for, watermarks

KCAT_TIMEOUT = 60


def kcat(bootstrap: str, *args: str, input: str | None = None, timeout: float = KCAT_TIMEOUT,
         check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["kcat", "-b", bootstrap, "-X", "socket.timeout.ms=10000", *args]
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{' '.join(cmd)} did not finish within {timeout}s\n"
                             f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}") from None
    if check:
        assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def test_kcat_metadata_lists_broker_and_topics(broker):
    bootstrap, _, _ = broker
    t1, t2 = unique("kcat-meta-a"), unique("kcat-meta-b")
    create_topic(bootstrap, t1, 3)
    create_topic(bootstrap, t2, 1)

    md = json.loads(kcat(bootstrap, "-L", "-J").stdout)
    brokers = {b["id"]: b["name"] for b in md["brokers"]}
    assert len(brokers) == 1, md["brokers"]
    (bid, name), = brokers.items()
    assert name == bootstrap, f"advertised broker {name!r} != {bootstrap!r}"
    assert md["controllerid"] == bid

    topics = {t["topic"]: t for t in md["topics"]}
    assert t1 in topics and t2 in topics, sorted(topics)
    for t, n in ((t1, 3), (t2, 1)):
        assert "error" not in topics[t] or not topics[t]["error"], topics[t]
        parts = sorted(topics[t]["partitions"], key=lambda p: p["partition"])
        assert [p["partition"] for p in parts] == list(range(n))
        for p in parts:
            assert p["leader"] == bid, p
            assert [r["id"] for r in p["replicas"]] == [bid], p
            assert [r["id"] for r in p["isrs"]] == [bid], p

    # Metadata for one topic only (-t) also works.
    md1 = json.loads(kcat(bootstrap, "-L", "-J", "-t", t1).stdout)
    assert [t["topic"] for t in md1["topics"]] == [t1]
    assert len(md1["topics"][0]["partitions"]) == 3


def _produce_keyed(bootstrap, topic, n, extra=()):
    lines = [f"key-{i % 13}:value-{i:05d}" for i in range(n)]
    kcat(bootstrap, "-P", "-t", topic, "-K:", "-X", "acks=all", *extra, input="\n".join(lines) + "\n")
    return [(ln.split(":", 1)[0], ln.split(":", 1)[1]) for ln in lines]


def test_kcat_produce_keyed_and_consume_back(broker):
    bootstrap, _, _ = broker
    topic = unique("kcat-kv")
    create_topic(bootstrap, topic, 3)
    sent = _produce_keyed(bootstrap, topic, 300)

    out = kcat(bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-J", "-q").stdout
    got = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
    assert len(got) == len(sent), f"consumed {len(got)} of {len(sent)}"

    # Same multiset of key/value pairs, and per key the original order (one key, one partition).
    assert sorted((g["key"], g["payload"]) for g in got) == sorted(sent)
    by_key_sent, by_key_got, key_part = defaultdict(list), defaultdict(list), {}
    for k, v in sent:
        by_key_sent[k].append(v)
    for g in sorted(got, key=lambda g: (g["partition"], g["offset"])):
        by_key_got[g["key"]].append(g["payload"])
        assert key_part.setdefault(g["key"], g["partition"]) == g["partition"], f"key {g['key']} in two partitions"
    assert by_key_got == by_key_sent

    # Offsets are dense from 0 in every partition and match the high watermarks.
    marks = watermarks(bootstrap, topic, 3)
    for p in range(3):
        offs = sorted(g["offset"] for g in got if g["partition"] == p)
        assert offs == list(range(len(offs))), f"partition {p} offsets not dense: {offs[:10]}..."
        assert marks[p] == (0, len(offs)), f"partition {p}: watermarks {marks[p]} vs {len(offs)} records"

    # The same records seen by a second, independent client.
    recs = read_all(bootstrap, topic, 3)
    assert sorted((r.key.decode(), r.value.decode()) for r in recs) == sorted(sent)


def test_kcat_produce_compressed_and_consume_back(broker):
    bootstrap, data_dir, _ = broker
    topic = unique("kcat-codec")
    create_topic(bootstrap, topic, 1)
    sent = []
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        sent += _produce_keyed(bootstrap, topic, 50, extra=("-z", codec))
    out = kcat(bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%k:%s\\n", "-q").stdout
    assert out.splitlines() == [f"{k}:{v}" for k, v in sent]

    # Debian's librdkafka 2.0.2 really compresses (it needs Produce v0 in the advertised range),
    # and the broker keeps the compressed batches: 1000 values of 1 KB take far less than 1 MB.
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        t = unique(f"kcat-z-{codec}")
        create_topic(bootstrap, t, 1)
        lines = [f"k:{i:05d}" + "z" * 1000 for i in range(1000)]
        kcat(bootstrap, "-P", "-t", t, "-K:", "-z", codec, "-X", "linger.ms=50", input="\n".join(lines) + "\n")
        total, files = log_bytes(data_dir, t)
        assert files > 0, f"no segment files for {t}"
        assert total < 100_000, f"kcat -z {codec}: {total} bytes on disk for ~1 MB of values"
        out = kcat(bootstrap, "-C", "-t", t, "-e", "-o", "beginning", "-f", "%k:%s\\n", "-q").stdout
        assert out.splitlines() == lines


def test_kcat_group_mode_consumes_everything(broker):
    bootstrap, _, _ = broker
    topic = unique("kcat-grp")
    group = unique("kcat-group")
    create_topic(bootstrap, topic, 4)
    sent = _produce_keyed(bootstrap, topic, 400)

    p = kcat(bootstrap, "-G", group, topic, "-o", "beginning", "-X", "auto.offset.reset=earliest",
             "-c", str(len(sent)), "-f", "%k:%s:%p:%o\\n", "-q", timeout=90)
    got = [ln.split(":") for ln in p.stdout.splitlines() if ln]
    assert len(got) == len(sent), f"group consumer got {len(got)} of {len(sent)}; stderr: {p.stderr}"
    assert sorted((k, v) for k, v, _, _ in got) == sorted(sent)

    # kcat commits on close (auto commit): the group's committed offsets are the end offsets.
    marks = watermarks(bootstrap, topic, 4)
    a = admin(bootstrap)

    def committed():
        fut = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, i) for i in range(4)])])[group]
        return {tp.partition: tp.offset for tp in fut.result(timeout=10).topic_partitions}

    want = {i: marks[i][1] for i in range(4)}
    wait_for(lambda: committed() == want, 15, f"committed offsets of {group} == {want}")

    # A second run in the same group finds nothing left to read.
    p2 = kcat(bootstrap, "-G", group, topic, "-e", "-f", "%s\\n", "-q", timeout=60)
    assert p2.stdout.strip() == "", f"second group run re-read records: {p2.stdout[:300]!r}"
