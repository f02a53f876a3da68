"""A slow database must not make the worker's memory grow: events keep arriving faster than the
(artificially slowed) database takes them, the lag reported on /metrics grows, and the worker's
resident memory stays flat — the pipeline pauses partitions instead of buffering.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request

from conftest import broker_binary, free_port

TOPICS_YAML = """
topics:
  - name: trades
    partitions: 4
"""


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def lag_records(port: int) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("brook_pipeline_lag_records{"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_slow_database_grows_lag_not_memory(broker, tmp_path):
    bootstrap = broker.bootstrap
    yaml = tmp_path / "brook.yaml"
    yaml.write_text(TOPICS_YAML)
    r = subprocess.run([str(broker_binary()), "topics", "apply", "-f", str(yaml), "--bootstrap", bootstrap],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    metrics_port = free_port()
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen(
        [str(broker_binary()), "ledger", "run", "--bootstrap", bootstrap, "--db", f"sqlite:{tmp_path / 'l.sqlite'}",
         "--apply-delay-ms", "200", "--max-batch", "50", "--metrics", f"127.0.0.1:{metrics_port}"],
        stdout=log, stderr=subprocess.STDOUT)
    gen = subprocess.Popen(
        [str(broker_binary()), "ledger", "generate", "--bootstrap", bootstrap, "--accounts", "2000",
         "--events", "60000", "--rate", "2500", "--seed", "3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(8)  # join, first batches, steady state
        lag1, rss1 = lag_records(metrics_port), rss_mib(worker.pid)
        peak = rss1
        for _ in range(24):
            time.sleep(0.5)
            peak = max(peak, rss_mib(worker.pid))
        lag2, rss2 = lag_records(metrics_port), rss_mib(worker.pid)
        print(f"lag {lag1} -> {lag2} records; RSS {rss1:.0f} -> {rss2:.0f} MiB (peak {peak:.0f})")
        assert worker.poll() is None, "worker died"
        assert lag2 > lag1 + 5000, f"lag did not grow: {lag1} -> {lag2}"
        # Flat memory while ~20 000 more records arrived: bounded prefetch and in-flight work.
        assert rss2 - rss1 < 40, f"RSS grew {rss1:.0f} -> {rss2:.0f} MiB"
        assert peak < 300, f"peak RSS {peak:.0f} MiB"
    finally:
        gen.kill()
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise AssertionError("worker ignored SIGTERM")
