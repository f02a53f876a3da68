"""`brook produce` to a topic that does not exist yet asks for auto-creation in Metadata, as Java's
and librdkafka's producers do: it works against librdkafka's mock cluster (where `kcat -P -t new`
works) and against Brook's broker with auto-create on."""

from __future__ import annotations

import subprocess

from brookutil import read_all, topic_partitions, unique
from conftest import broker_binary
from mockcluster import MockCluster


def produce_lines(bootstrap: str, topic: str, lines: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(broker_binary()), "produce", "--bootstrap", bootstrap, "--topic", topic],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)


def test_produce_to_new_topic_on_librdkafka_mock_cluster(tmp_path):
    mock = MockCluster(brokers=3, log_dir=tmp_path)
    try:
        topic = unique("autocreate")
        r = produce_lines(mock.bootstrap, topic, [f"v{i}" for i in range(10)])
        assert r.returncode == 0, r.stderr
        partitions = topic_partitions(mock.bootstrap, topic)
        assert partitions
        assert sorted(rec.value for rec in read_all(mock.bootstrap, topic, partitions)) == sorted(f"v{i}".encode() for i in range(10))
    finally:
        mock.close()


def test_produce_to_new_topic_on_brook_broker(bootstrap):
    topic = unique("autocreate")
    r = produce_lines(bootstrap, topic, ["a", "b", "c"])
    assert r.returncode == 0, r.stderr
    partitions = topic_partitions(bootstrap, topic)
    assert partitions
    assert sorted(rec.value for rec in read_all(bootstrap, topic, partitions)) == [b"a", b"b", b"c"]
