"""A slow database: the worker's memory stays bounded and the lag grows instead.

The generator writes far more events than an (artificially slowed) database takes. If the
worker buffered what it cannot apply yet, its resident memory would grow with the backlog;
instead the pipeline pauses partitions at its in-flight bound, the lag on /metrics grows, the
worker keeps applying, and RSS stays flat.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request

from brookutil import log_bytes
from conftest import broker_binary, free_port

TOPICS_YAML = """
topics:
  - name: trades
    partitions: 8
"""

EVENTS = 300_000
IN_FLIGHT_BOUND = 10_000  # PipelineConfiguration.maxInFlightRecords' default


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def metrics(port: int) -> dict[str, float]:
    """Sums of each metric over its label sets."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def test_slow_database_grows_lag_not_memory(broker, tmp_path):
    bootstrap = broker.bootstrap
    yaml = tmp_path / "brook.yaml"
    yaml.write_text(TOPICS_YAML)
    r = subprocess.run([str(broker_binary()), "topics", "apply", "-f", str(yaml), "--bootstrap", bootstrap],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    metrics_port = free_port()
    log = open(tmp_path / "worker.log", "wb")
    # 200 ms per transaction of at most 50 events: at most ~250 events/s per partition.
    worker = subprocess.Popen(
        [str(broker_binary()), "ledger", "run", "--bootstrap", bootstrap, "--db", f"sqlite:{tmp_path / 'l.sqlite'}",
         "--apply-delay-ms", "200", "--max-batch", "50", "--metrics", f"127.0.0.1:{metrics_port}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        m: dict[str, float] = {}
        while time.time() < deadline:
            time.sleep(0.5)
            assert worker.poll() is None, "worker died: " + (tmp_path / "worker.log").read_text()[-2000:]
            try:
                m = metrics(metrics_port)
            except OSError:
                continue
            if "brook_pipeline_lag_records" in m:  # partitions assigned
                break
        else:
            raise AssertionError(f"worker never got its partitions: {m}")
        # Events arrive far faster than the database takes them: the lag must grow.
        lag0 = m.get("brook_pipeline_lag_records", 0)
        time.sleep(1)
        rss0 = rss_mib(worker.pid)
        gen = subprocess.run(
            [str(broker_binary()), "ledger", "generate", "--bootstrap", bootstrap, "--accounts", "2000",
             "--events", str(EVENTS), "--seed", "3"],
            capture_output=True, text=True, timeout=300)
        assert gen.returncode == 0, gen.stderr
        backlog_bytes, _ = log_bytes(broker.data_dir, "trades")
        assert backlog_bytes > 15 * 1024 * 1024, backlog_bytes
        time.sleep(2)
        m1, rss1 = metrics(metrics_port), rss_mib(worker.pid)
        assert m1["brook_pipeline_lag_records"] > lag0 + EVENTS // 2, f"lag did not grow: {lag0} -> {m1}"
        series = [rss1]
        peak, max_in_flight, paused_seen = rss1, 0.0, 0.0
        for _ in range(40):
            time.sleep(0.5)
            series.append(rss_mib(worker.pid))
            peak = max(peak, series[-1])
            m = metrics(metrics_port)
            max_in_flight = max(max_in_flight, m.get("brook_pipeline_in_flight_records", 0))
            paused_seen = max(paused_seen, m.get("brook_pipeline_paused_partitions", 0))
        m2, rss2 = metrics(metrics_port), rss_mib(worker.pid)
        applied = m2["brook_pipeline_records_total"] - m1["brook_pipeline_records_total"]
        print(f"lag {m1['brook_pipeline_lag_records']:.0f} -> {m2['brook_pipeline_lag_records']:.0f} records; "
              f"applied {applied:.0f} in 20 s; in flight max {max_in_flight:.0f}; paused partitions max {paused_seen:.0f}; "
              f"RSS {rss0:.0f} before the backlog, {rss1:.0f} -> {rss2:.0f} MiB (peak {peak:.0f}); backlog {backlog_bytes / 2**20:.0f} MiB")
        print("RSS series:", " ".join(f"{x:.0f}" for x in series))
        assert worker.poll() is None, "worker died"
        assert applied > 500, f"worker stopped applying: {applied}"
        # The bound may be overshot by the one fetched batch (≤ max.partition.fetch.bytes, 1 MiB)
        # that crossed it: already in memory, so it is taken rather than fetched again.
        assert max_in_flight <= IN_FLIGHT_BOUND + 1024 * 1024 // 100, f"in-flight bound exceeded: {max_in_flight}"
        assert paused_seen > 0, "no partition was ever paused: backpressure did not engage"
        # Flat memory while it works through the backlog, and far below the backlog's size.
        assert rss2 - rss1 < 24, f"RSS grew {rss1:.0f} -> {rss2:.0f} MiB"
        assert peak < 200, f"peak RSS {peak:.0f} MiB"
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise AssertionError("worker ignored SIGTERM")

