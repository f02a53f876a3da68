"""Brook's client (the `brook produce` / `brook consume` CLI) against librdkafka's 3-broker mock
cluster (tests/mock/brook_mock_cluster.c) while faults are injected: a broker down and back up, a
partition leader moved, injected request errors, added round-trip time.

The producer (idempotent, acks=all) must lose nothing, duplicate nothing and keep per-partition
order: every line carries its global sequence number, and the topic is read back with
confluent-kafka straight from the mock. The consumer group (two `brook consume --group` members)
must carry on and together read every record.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import defaultdict

import pytest
from confluent_kafka import Producer

from brookutil import read_all, unique, wait_for
from conftest import broker_binary
from mockcluster import (COORDINATOR_NOT_AVAILABLE, FIND_COORDINATOR, HEARTBEAT, INIT_PRODUCER_ID, JOIN_GROUP,
                         METADATA, NOT_COORDINATOR, NOT_LEADER_OR_FOLLOWER, OFFSET_COMMIT, PRODUCE, REQUEST_TIMED_OUT,
                         FETCH, SYNC_GROUP, TRANSPORT, BrookProcess, MockCluster)

PARTITIONS = 4
KEYS = 40


@pytest.fixture
def mock(tmp_path):
    m = MockCluster(brokers=3, log_dir=tmp_path)
    yield m
    m.close()


def make_topic(mock: MockCluster, partitions: int = PARTITIONS) -> str:
    """A topic whose partition p is led by broker p % 3 + 1, so each broker leads something."""
    topic = unique("mock")
    mock.cmd(f"topic {topic} {partitions}")
    for p in range(partitions):
        mock.cmd(f"leader {topic} {p} {p % 3 + 1}")
    return topic


# Each fault: commands applied a third of the way through (those in "start" before the producer
# starts), commands that undo it two thirds in, and the producer's --max-in-flight.
#
# Injected Produce errors run with one request in flight: librdkafka 2.0.2's mock checks idempotent
# sequences only for transactional producers (rd_kafka_mock_validate_records returns early without
# a TransactionalId), so it would accept batch N+1 while N is being retried, where a real broker
# answers OUT_OF_ORDER_SEQUENCE_NUMBER and the producer resends in order. The other faults keep
# the default of 5 in flight.
PRODUCER_FAULTS = {
    "broker_down_and_up": (["down 1"], ["up 1"], 5),
    "leader_moved": (["leader {t} 0 2", "leader {t} 1 3", "leader {t} 2 1"], [], 5),
    "leader_failover_while_down": (["down 2", "leader {t} 1 3"], ["up 2"], 5),
    "added_rtt": (["rtt -1 150"], ["rtt -1 0"], 5),
    "not_leader_or_follower": ([f"errors {PRODUCE} " + " ".join([str(NOT_LEADER_OR_FOLLOWER)] * 6)], [], 1),
    "request_timed_out": ([f"errors {PRODUCE} " + " ".join([str(REQUEST_TIMED_OUT)] * 6)], [], 1),
    "coordinator_not_available": ([f"start errors {INIT_PRODUCER_ID} {COORDINATOR_NOT_AVAILABLE} {COORDINATOR_NOT_AVAILABLE}",
                                   f"errors {PRODUCE} {COORDINATOR_NOT_AVAILABLE} {NOT_LEADER_OR_FOLLOWER}"], [], 1),
    "connection_dropped_on_produce": ([f"errors {PRODUCE} {TRANSPORT} {TRANSPORT}"], [], 1),
}

# What the producer's debug log must show, so that a fault that did not bite fails the test.
FAULT_EVIDENCE = {
    "broker_down_and_up": ["cannot connect to leader|produce request failed"],
    "leader_moved": ["NOT_LEADER_OR_FOLLOWER"],
    "leader_failover_while_down": ["cannot connect to leader|produce request failed|NOT_LEADER_OR_FOLLOWER"],
    "added_rtt": [],
    "not_leader_or_follower": ["error=NOT_LEADER_OR_FOLLOWER"],
    "request_timed_out": ["error=REQUEST_TIMED_OUT"],
    "coordinator_not_available": ["InitProducerId failed, retrying", "error=COORDINATOR_NOT_AVAILABLE"],
    "connection_dropped_on_produce": ["produce request failed"],
}


def check_exactly_once_in_order(records, total: int):
    """`records` (read back) hold values "<seq>": every seq in 0..total-1 exactly once, and within
    each partition in increasing order (lines were produced in seq order)."""
    seqs_by_partition = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        seqs_by_partition[r.partition].append(int(r.value.decode()))
    seen = [s for ss in seqs_by_partition.values() for s in ss]
    dups = sorted({s for s in seen if seen.count(s) > 1}) if len(seen) != len(set(seen)) else []
    missing = sorted(set(range(total)) - set(seen))
    assert not dups, f"{len(dups)} records duplicated, e.g. {dups[:10]}"
    assert not missing, f"{len(missing)} of {total} records lost, e.g. {missing[:10]}"
    assert len(seen) == total, f"read {len(seen)} records, produced {total}"
    for p, ss in seqs_by_partition.items():
        bad = [(a, b) for a, b in zip(ss, ss[1:]) if b <= a]
        assert not bad, f"partition {p} out of order: {bad[:5]}"
    # Keys are placed consistently (same key, same partition).
    where = {}
    for r in records:
        assert where.setdefault(r.key, r.partition) == r.partition, f"key {r.key!r} on two partitions"


@pytest.mark.parametrize("fault", list(PRODUCER_FAULTS))
def test_producer_exactly_once_and_ordered_under_fault(mock, tmp_path, fault):
    inject, restore, in_flight = PRODUCER_FAULTS[fault]
    topic = make_topic(mock)
    for command in inject:
        if command.startswith("start "):
            mock.cmd(command.removeprefix("start "))
    inject = [c for c in inject if not c.startswith("start ")]
    total, chunks = 3000, 30
    per_chunk = total // chunks
    prod = BrookProcess(broker_binary(), ["produce", "--bootstrap", mock.bootstrap, "--topic", topic,
                                          "--key-separator", " ", "--linger-ms", "2", "--timeout-ms", "5000",
                                          "--max-in-flight", str(in_flight), "--log-level", "debug"],
                        stdin=subprocess.PIPE, log=tmp_path / "produce.log")
    try:
        for c in range(chunks):
            if c == chunks // 3:
                for command in inject:
                    mock.cmd(command.format(t=topic))
            if c == 2 * chunks // 3:
                time.sleep(0.5)  # let the fault bite before it is undone
                for command in restore:
                    mock.cmd(command.format(t=topic))
            prod.write("".join(f"k{i % KEYS} {i}\n" for i in range(c * per_chunk, (c + 1) * per_chunk)))
            time.sleep(0.03)
        prod.close_stdin()
        rc = prod.wait(90)
    finally:
        prod.terminate()
        for command in restore:
            mock.cmd(command.format(t=topic))
    assert rc == 0, f"brook produce exited {rc} under {fault}:\n{prod.stderr()}"
    log = (tmp_path / "produce.log").read_text(errors="replace")
    for pattern in FAULT_EVIDENCE[fault]:
        assert re.search(pattern, log), f"no sign of the {fault} fault in the producer's log ({pattern!r})"
    check_exactly_once_in_order(read_all(mock.bootstrap, topic, PARTITIONS), total)


def test_consumer_group_carries_on_under_faults(mock, tmp_path):
    """Two `brook consume --group` members share a 6-partition topic while records arrive in waves
    and, between waves, the coordinator goes down and comes back, coordinator requests fail,
    leaders move, and round-trip time grows. Together they must read every record."""
    partitions = 6
    topic = make_topic(mock, partitions)
    group = unique("g")
    mock.cmd(f"coordinator group {group} 1")
    producer = Producer({"bootstrap.servers": mock.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    total = 0

    def wave(n: int, flush: bool = True):
        nonlocal total
        for i in range(total, total + n):
            producer.produce(topic, key=f"k{i % KEYS}".encode(), value=str(i).encode())
            producer.poll(0)
        total += n
        if flush:
            assert producer.flush(30) == 0, "confluent-kafka could not deliver a wave to the mock"

    wave(600)
    args = ["consume", "--bootstrap", mock.bootstrap, "--topic", topic, "--group", group, "--from-beginning",
            "--format", "%p %o %v", "--timeout-ms", "5000", "--log-level", "info",
            # The 2.0.2 mock completes a rebalance after a member left only when its timer (session
            # timeout - 1 s) fires: keep it short.
            "--session-timeout-ms", "6000"]
    members = [BrookProcess(broker_binary(), args, log=tmp_path / f"consume-{n}.log") for n in range(2)]

    def seen() -> set[int]:
        return {int(line.split()[2]) for m in members for line in list(m.lines) if line.strip()}

    def expect_all(what: str, timeout: float = 45):
        def check():
            for m in members:
                assert m.proc.poll() is None, f"a consumer exited ({m.proc.returncode}) {what}:\n{m.stderr()}"
            return len(seen()) == total
        wait_for(check, timeout, f"the group to read all {total} records {what} "
                                 f"(missing e.g. {sorted(set(range(total)) - seen())[:10]})")

    faults = [
        ("the coordinator broker down and up", ["down 1"], ["up 1"]),
        ("coordinator errors", [f"errors {FIND_COORDINATOR} {COORDINATOR_NOT_AVAILABLE} {COORDINATOR_NOT_AVAILABLE}",
                                f"errors {HEARTBEAT} {NOT_COORDINATOR} {COORDINATOR_NOT_AVAILABLE}",
                                f"errors {OFFSET_COMMIT} {COORDINATOR_NOT_AVAILABLE} {REQUEST_TIMED_OUT}"], []),
        ("fetch errors and moved leaders", [f"errors {FETCH} {NOT_LEADER_OR_FOLLOWER} {REQUEST_TIMED_OUT}",
                                            "leader {t} 0 3", "leader {t} 1 1", "leader {t} 4 3"], []),
        ("added round-trip time", ["rtt -1 150"], ["rtt -1 0"]),
    ]
    try:
        expect_all("before any fault", 60)
        for what, inject, restore in faults:
            for command in inject:
                mock.cmd(command.format(t=topic))
            wave(300, flush=False)  # partitions led by a broker that is down wait for it
            time.sleep(1.0)
            for command in restore:
                mock.cmd(command.format(t=topic))
            wave(100)
            expect_all(f"after {what}")
        # One member leaves while requests are slow and a coordinator error is pending: the
        # other takes over its partitions.
        mock.cmd("rtt -1 100")
        mock.cmd(f"errors {JOIN_GROUP} {COORDINATOR_NOT_AVAILABLE}")
        members[1].terminate()
        before = len(members[0].lines)
        wave(400)
        mock.cmd("rtt -1 0")
        wait_for(lambda: members[0].proc.poll() is None and len(seen()) == total, 45,
                 "the remaining member to read the leaver's partitions too")
        assert {int(line.split()[0]) for line in members[0].lines[before:]} == set(range(partitions)), \
            "after the other member left, the remaining one did not read every partition"
    finally:
        for m in members:
            m.terminate()
        producer.flush(5)
        del producer
    assert seen() == set(range(total))
    for n, m in enumerate(members):
        assert m.lines, f"member {n} consumed nothing: the group did not share the partitions"
