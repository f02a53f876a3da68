"""`brook lag` and `brook lag serve` on groups run by real clients (confluent-kafka, kcat -G).

Every scenario waits for what it needs to see — the watcher having observed a commit, a status
being reached — instead of sleeping: the outcome never depends on timing, only how long the
wait takes does (bounded by the timeouts).
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from brookutil import base_consumer_conf, create_topic, unique, wait_for
from conftest import broker_binary, free_port

WAIT = 60


def brook(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(broker_binary()), *args], capture_output=True, text=True, timeout=timeout)


def produce(bootstrap: str, topic: str, n: int, partition: int = 0, timestamps: list[int] | None = None) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    for i in range(n):
        kw = {"timestamp": timestamps[i]} if timestamps else {}
        p.produce(topic, value=f"v{i}".encode(), partition=partition, **kw)
    assert p.flush(30) == 0, "records left unflushed"


class LagWatch:
    """`brook lag --format json --watch` in the background; every line is one report."""

    def __init__(self, bootstrap: str, group: str, interval: float = 0.1, extra=()):
        self.proc = subprocess.Popen(
            [str(broker_binary()), "lag", "--bootstrap", bootstrap, "--group", group, "--format", "json",
             "--watch", str(interval), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reports: queue.Queue = queue.Queue()
        self.last = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.reports.put(json.loads(line))

    def wait(self, pred, what: str, timeout: float = WAIT) -> dict:
        """The first report (from now on) for which `pred(report)` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = self.reports.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, f"brook lag exited {self.proc.returncode}: {self.proc.stderr.read()}"
                continue
            self.last = r
            if pred(r):
                return r
        raise AssertionError(f"timed out waiting for {what}; last report: {json.dumps(self.last)}")

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def part(report: dict, partition: int = 0) -> dict | None:
    for g in report["groups"]:
        for p in g["partitions"]:
            if p["partition"] == partition:
                return p
    return None


def group_status(report: dict) -> str | None:
    return report["groups"][0]["status"] if report["groups"] else None


def at_offset(offset: int, partition: int = 0):
    return lambda r: (p := part(r, partition)) is not None and p["current_offset"] == offset


def member(bootstrap: str, group: str, topic: str) -> Consumer:
    """A confluent-kafka group member that owns partition 0 of `topic` (manual commits)."""
    c = Consumer(base_consumer_conf(bootstrap, group))
    c.subscribe([topic])
    deadline = time.monotonic() + 30
    while not c.assignment():
        assert time.monotonic() < deadline, f"{group} got no assignment"
        m = c.poll(0.2)
        if m is not None and not m.error():
            # Assigned, and a record early: give it back so consume() counts from the start.
            c.seek(TopicPartition(topic, m.partition(), m.offset()))
            break
    return c


def consume(c: Consumer, n: int) -> int:
    """Polls until `n` records arrived; returns the offset after the last one."""
    got, nxt = 0, None
    deadline = time.monotonic() + 30
    while got < n:
        assert time.monotonic() < deadline, f"only {got} of {n} records consumed"
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got += 1
        nxt = m.offset() + 1
    return nxt


def commit(c: Consumer, topic: str, offset: int) -> None:
    c.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)


def test_lag_consumer_that_keeps_up_is_ok(broker):
    bootstrap = broker.bootstrap
    topic, group = unique("lag-ok"), unique("g-ok")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 40)
    c = member(bootstrap, group, topic)
    w = LagWatch(bootstrap, group)
    try:
        commit(c, topic, consume(c, 20))
        w.wait(at_offset(20), "the first commit")
        commit(c, topic, consume(c, 20))
        r = w.wait(lambda r: at_offset(40)(r) and r["window_rules_applied"], "the group caught up")
        p = part(r)
        assert (p["lag"], p["lag_seconds"], p["status"], group_status(r)) == (0, 0, "OK", "OK"), r
        assert p["owner"]["client_id"] and p["owner"]["consumer_id"], p
    finally:
        w.close()
        c.close()
    # Exit status 0 when every group is OK.
    one = brook("lag", "--bootstrap", bootstrap, "--group", group)
    assert one.returncode == 0, one.stdout + one.stderr
    assert one.stdout.splitlines()[0].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                                                  "CONSUMER-ID", "HOST", "CLIENT-ID", "STATUS", "LAG-SECONDS", "ETA"]


def test_lag_kcat_group_that_keeps_up_is_ok(broker):
    bootstrap = broker.bootstrap
    topic, group = unique("lag-kcat"), unique("g-kcat")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 30)
    kc = subprocess.Popen(["kcat", "-b", bootstrap, "-G", group, "-o", "beginning", "-q",
                           "-X", "auto.commit.interval.ms=100", topic],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    w = LagWatch(bootstrap, group)
    try:
        r = w.wait(lambda r: at_offset(30)(r) and r["observations"] >= 2 and part(r)["owner"] is not None, "kcat's commits")
        r = w.wait(lambda r: at_offset(30)(r), "another observation")
        assert (part(r)["status"], group_status(r), part(r)["lag_seconds"]) == ("OK", "OK", 0), r
        assert part(r)["owner"]["client_id"] == "rdkafka", part(r)["owner"]
    finally:
        w.close()
        kc.terminate()
        kc.wait(10)


def test_lag_kcat_group_stopped_after_catching_up_is_warn_only_by_time_lag(broker):
    """Burrow's blind spot: a caught-up consumer that stops keeps zero-lag commits in its window,
    so the rules say OK; --max-lag-seconds sees the waiting records' age and says WARN."""
    bootstrap = broker.bootstrap
    topic, group = unique("lag-kcat-stop"), unique("g-kcat-stop")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 10)
    kc = subprocess.Popen(["kcat", "-b", bootstrap, "-G", group, "-o", "beginning", "-q",
                           "-X", "auto.commit.interval.ms=100", topic],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    w = LagWatch(bootstrap, group, extra=("--max-lag-seconds", "60"))
    try:
        w.wait(lambda r: at_offset(10)(r) and part(r)["owner"] is not None, "kcat's commits")
        kc.terminate()
        kc.wait(10)
        w.wait(lambda r: (p := part(r)) is not None and p["owner"] is None, "kcat to leave the group")
        old = int(time.time() * 1000) - 120_000
        produce(bootstrap, topic, 5, timestamps=[old + i for i in range(5)])
        r = w.wait(lambda r: (p := part(r)) is not None and p["log_end_offset"] == 15, "the new records")
        p = part(r)
        assert (p["lag"], p["window_status"], p["status"], group_status(r)) == (5, "OK", "WARN", "WARN"), r
        assert p["over_max_lag_seconds"] is True and p["lag_seconds"] >= 119, p
    finally:
        w.close()
        if kc.poll() is None:
            kc.terminate()
            kc.wait(10)


def test_lag_consumer_falling_behind_is_warn(broker):
    bootstrap = broker.bootstrap
    topic, group = unique("lag-warn"), unique("g-warn")
    create_topic(bootstrap, topic, 1)
    c = member(bootstrap, group, topic)
    w = LagWatch(bootstrap, group)
    try:
        # Each step 20 records arrive and the member commits 10 more: the lag grows 10 a step.
        for step in range(1, 5):
            produce(bootstrap, topic, 20)
            commit(c, topic, consume(c, 10))
            r = w.wait(at_offset(10 * step), f"step {step}'s commit")
        p = part(r)
        assert p["lag"] == 40 and p["status"] == "WARN" and group_status(r) == "WARN", r
        assert p["catching_up"] is False or p["catching_up"] is None, p
    finally:
        w.close()
        c.close()


def test_lag_consumer_stopped_while_records_arrive_is_stop_and_group_err(broker):
    bootstrap = broker.bootstrap
    topic, group = unique("lag-stop"), unique("g-stop")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 50)
    c = member(bootstrap, group, topic)
    w = LagWatch(bootstrap, group)
    try:
        commit(c, topic, consume(c, 10))
        w.wait(at_offset(10), "the first commit")
        commit(c, topic, consume(c, 10))
        w.wait(at_offset(20), "the second commit")
        c.close()
        produce(bootstrap, topic, 20)
        r = w.wait(lambda r: (p := part(r)) is not None and p["status"] == "STOP", "STOP")
        assert group_status(r) == "ERR" and part(r)["lag"] >= 30 and part(r)["owner"] is None, r
    finally:
        w.close()


def test_lag_group_rewound_with_brook_groups_reset_is_rewind(broker):
    bootstrap = broker.bootstrap
    topic, group = unique("lag-rewind"), unique("g-rewind")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 100)
    w = LagWatch(bootstrap, group)
    try:
        for off in (30, 60, 5):
            r = brook("groups", "reset", group, "--bootstrap", bootstrap, "--topic", topic, "--to-offset", str(off))
            assert r.returncode == 0, r.stdout + r.stderr
            rep = w.wait(at_offset(off), f"the reset to {off}")
        assert part(rep)["status"] == "REWIND" and group_status(rep) == "ERR", rep
    finally:
        w.close()


def test_lag_member_committing_same_offset_with_lag_is_stall(broker):
    bootstrap = broker.bootstrap
    topic, group = unique("lag-stall"), unique("g-stall")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 30)
    c = member(bootstrap, group, topic)
    w = LagWatch(bootstrap, group)
    try:
        commit(c, topic, 7)
        w.wait(at_offset(7), "the commit")
        # The member stays in the group and keeps committing offset 7.
        r = None
        for _ in range(3):
            commit(c, topic, 7)
            c.poll(0.05)
            r = w.wait(lambda r: at_offset(7)(r) and part(r)["window_samples"] >= 2 and part(r)["owner"] is not None, "repeated commits")
        assert (part(r)["status"], group_status(r), part(r)["lag"]) == ("STALL", "ERR", 23), r
    finally:
        w.close()
        c.close()


def test_lag_seconds_is_age_of_oldest_unconsumed_record_and_max_lag_seconds_warns(broker):
    bootstrap = broker.bootstrap
    topic, group = unique("lag-time"), unique("g-time")
    create_topic(bootstrap, topic, 1)
    base = int(time.time() * 1000) - 60_000
    produce(bootstrap, topic, 10, timestamps=[base + i * 1000 for i in range(10)])
    r = brook("groups", "reset", group, "--bootstrap", bootstrap, "--topic", topic, "--to-offset", "3")
    assert r.returncode == 0, r.stderr
    before = time.time()
    one = brook("lag", "--bootstrap", bootstrap, "--group", group, "--format", "json")
    after = time.time()
    assert one.returncode == 0, one.stderr
    rep = json.loads(one.stdout)
    p = part(rep)
    oldest = (base + 3000) / 1000
    assert before - oldest - 1 <= p["lag_seconds"] <= after - oldest + 1, (p["lag_seconds"], before - oldest, after - oldest)
    assert p["lag"] == 7 and p["status"] == "OK" and rep["window_rules_applied"] is False, rep
    # Past --max-lag-seconds the partition is WARN, and the exit status says so.
    warn = brook("lag", "--bootstrap", bootstrap, "--group", group, "--max-lag-seconds", "30")
    assert warn.returncode == 2, warn.stdout + warn.stderr
    assert " WARN " in warn.stdout and "note: one observation" in warn.stdout, warn.stdout


def test_lag_idle_topic_is_zero_seconds_never_nan(broker):
    bootstrap = broker.bootstrap
    busy, idle, group = unique("lag-busy"), unique("lag-idle"), unique("g-idle")
    create_topic(bootstrap, busy, 1)
    create_topic(bootstrap, idle, 1)
    produce(bootstrap, busy, 5)
    for t, off in ((busy, 5), (idle, 0)):
        r = brook("groups", "reset", group, "--bootstrap", bootstrap, "--topic", t, "--to-offset", str(off))
        assert r.returncode == 0, r.stderr
    one = brook("lag", "--bootstrap", bootstrap, "--group", group, "--format", "json")
    assert one.returncode == 0, one.stderr
    parts = {p["topic"]: p for p in json.loads(one.stdout)["groups"][0]["partitions"]}
    assert parts[busy]["lag_seconds"] == 0 and parts[idle]["lag_seconds"] == 0, parts
    prom = brook("lag", "--bootstrap", bootstrap, "--group", group, "--format", "prometheus")
    assert "NaN" not in prom.stdout
    secs = [s for f in text_string_to_metric_families(prom.stdout) if f.name == "kafka_consumergroup_group_lag_seconds" for s in f.samples]
    assert sorted(s.labels["topic"] for s in secs) == sorted([busy, idle]) and all(s.value == 0 for s in secs), secs


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_lag_serve_metrics_parse_and_burrow_api_has_burrow_fields(broker):
    bootstrap = broker.bootstrap
    topic, group = unique("lag-serve"), unique("g-serve")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 12)
    r = brook("groups", "reset", group, "--bootstrap", bootstrap, "--topic", topic, "--to-offset", "2")
    assert r.returncode == 0, r.stderr
    port = free_port()
    srv = subprocess.Popen([str(broker_binary()), "lag", "serve", "--bootstrap", bootstrap, "--listen", f"127.0.0.1:{port}",
                            "--interval", "0.2", "--cluster-name", "local"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def metrics():
            try:
                code, text = get(base + "/metrics")
            except OSError:
                return None
            return text if code == 200 and f'group="{group}"' in text else None
        text = wait_for(metrics, WAIT, "/metrics to show the group")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name in ["kafka_consumergroup_group_offset", "kafka_consumergroup_group_lag", "kafka_consumergroup_group_lag_seconds",
                     "kafka_consumergroup_group_max_lag", "kafka_consumergroup_group_max_lag_seconds", "kafka_consumergroup_group_sum_lag",
                     "kafka_consumergroup_group_topic_sum_lag", "kafka_partition_latest_offset", "kafka_partition_earliest_offset",
                     "kafka_consumergroup_group_status"]:
            assert name in families, (name, sorted(families))
        lag = [s for s in families["kafka_consumergroup_group_lag"].samples if s.labels["group"] == group]
        assert len(lag) == 1 and lag[0].value == 10, lag
        assert set(lag[0].labels) == {"cluster_name", "group", "topic", "partition", "member_host", "consumer_id", "client_id"}
        assert lag[0].labels["cluster_name"] == "local" and lag[0].labels["topic"] == topic and lag[0].labels["partition"] == "0"
        latest = [s for s in families["kafka_partition_latest_offset"].samples if s.labels["topic"] == topic]
        assert [s.value for s in latest] == [12], latest

        code, body = get(base + "/v3/kafka")
        assert code == 200 and json.loads(body)["clusters"] == ["local"], body
        code, body = get(base + "/v3/kafka/local/consumer")
        assert code == 200 and group in json.loads(body)["consumers"], body
        code, body = get(base + f"/v3/kafka/local/consumer/{group}/lag")
        st = json.loads(body)
        assert code == 200 and st["error"] is False and set(st) == {"error", "message", "status", "request"}, st
        s = st["status"]
        assert set(s) >= {"cluster", "group", "status", "complete", "partitions", "partition_count", "maxlag", "totallag"}, s
        assert s["cluster"] == "local" and s["group"] == group and s["totallag"] == 10 and s["partition_count"] == 1, s
        p = s["partitions"][0]
        assert set(p) >= {"topic", "partition", "owner", "status", "start", "end", "current_lag", "complete"}, p
        assert set(p["end"]) >= {"offset", "timestamp", "lag"} and p["end"]["offset"] == 2 and p["current_lag"] == 10, p
        code, body = get(base + f"/v3/kafka/local/consumer/{group}/status")
        assert code == 200 and json.loads(body)["status"]["status"] in ("OK", "WARN", "ERR"), body
        code, body = get(base + "/v3/kafka/local/consumer/no-such-group/status")
        assert code == 404 and json.loads(body)["error"] is True, body
    finally:
        srv.terminate()
        try:
            srv.wait(15)
        except subprocess.TimeoutExpired:
            srv.kill()
            raise AssertionError("brook lag serve did not stop on SIGTERM")
    assert srv.returncode == 0, srv.stdout.read()
