"""`brook loadtest` through the CLI against the real broker binary: kafka-producer-perf-test's
lines with exact counts (read back by confluent-kafka), kafka-consumer-perf-test's CSV, OpenMessaging
Benchmark's JSON, and a tiny sweep of a ledger worker on SQLite writing its three files. Nothing
here depends on the machine's speed: counts are exact, latencies only ordered."""

from __future__ import annotations

import json
import re
import subprocess

from brookutil import create_topic, unique, watermarks
from conftest import broker_binary

FINAL = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                   r"([\d.]+) ms max latency, ([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th, ([\d.]+) ms 99\.9th\.$")


def brook(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([str(broker_binary()), "loadtest", *args], capture_output=True, text=True, timeout=timeout)


def test_produce_counts_are_exact_and_latencies_ordered(bootstrap):
    topic = unique("load")
    create_topic(bootstrap, topic, partitions=3)
    r = brook("produce", "--bootstrap", bootstrap, "--topic", topic, "--num-records", "5000", "--record-size", "50",
              "--throughput", "-1", "--producer-props", "acks=all", "linger.ms=2", "--key-distribution", "zipf", "--keys", "20")
    assert r.returncode == 0, r.stderr
    m = FINAL.match(r.stdout.strip().splitlines()[-1])
    assert m, r.stdout
    assert int(m.group(1)) == 5000
    avg, mx, p50, p95, p99, p999 = (float(m.group(i)) for i in range(4, 10))
    assert 0 < p50 <= p95 <= p99 <= p999 <= mx + 1 and avg > 0
    marks = watermarks(bootstrap, topic, 3)
    assert sum(hi - lo for lo, hi in marks.values()) == 5000
    # Keys from a Zipf distribution over 20 keys reach every partition.
    assert all(hi > 0 for _, hi in marks.values())

    c = brook("consume", "--bootstrap", bootstrap, "--topic", topic, "--messages", "5000", "--timeout", "30000")
    assert c.returncode == 0, c.stderr
    header, row = c.stdout.strip().splitlines()[-2:]
    assert header == ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                      "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")
    assert row.split(", ")[4] == "5000"


def test_unknown_producer_property_is_an_error(bootstrap):
    r = brook("produce", "--bootstrap", bootstrap, "--topic", unique("load"), "--num-records", "10",
              "--producer-props", "linger.mss=5")
    assert r.returncode != 0
    assert "unknown producer property linger.mss" in r.stderr


def test_e2e_writes_openmessaging_json(bootstrap, tmp_path):
    out = tmp_path / "e2e.json"
    r = brook("e2e", "--bootstrap", bootstrap, "--topic", unique("e2e"), "--partitions", "2", "--rate", "1000",
              "--duration", "2", "--interval", "1", "--json", str(out))
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    for key in ("publishRate", "consumeRate", "backlog", "publishLatency99pct", "endToEndLatency99pct",
                "aggregatedEndToEndLatency50pct", "aggregatedEndToEndLatency99pct", "aggregatedEndToEndLatencyMax"):
        assert key in d, key
    assert d["backlog"][-1] == 0
    assert 0 < d["aggregatedEndToEndLatency50pct"] <= d["aggregatedEndToEndLatency99pct"] <= d["aggregatedEndToEndLatencyMax"]


def test_sweep_of_a_ledger_worker_writes_three_files(bootstrap, tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("target: ledger\npartitions: 2\nrecords: 600\nwarmup-records: 100\nrepeats: 1\naccounts: 50\n"
                    "producer:\n  linger.ms: 1\npipeline:\n  batch.records: [50, 500]\n")
    out = tmp_path / "report"
    r = subprocess.run([str(broker_binary()), "loadtest", "sweep", "-f", str(spec), "--out", str(out), "--bootstrap", bootstrap],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "[2/2]" in r.stderr and "ETA" in r.stderr
    for name in ("report.md", "report.html", "results.json"):
        assert (out / name).stat().st_size > 100, name
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 2 and results["target"] == "ledger"
    assert "<svg" in (out / "report.html").read_text()
