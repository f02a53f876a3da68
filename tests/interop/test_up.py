"""The main job: `brook up` runs the broker, applies brook.yaml, generates trades, applies them
with the ledger workers, serves the status page, stops cleanly at --run-for, and a second run
resumes the same stream; afterwards `brook ledger verify` finds every balance right."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from conftest import REPO_ROOT, broker_binary, free_port


def up(data: Path, port: int, http: int, seconds: int, lag: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(broker_binary()), "up", "--dir", str(data), "--listen", f"127.0.0.1:{port}", "--http", f"127.0.0.1:{http}",
         "--lag-http", f"127.0.0.1:{lag}" if lag else "off",
         "--config", str(REPO_ROOT / "brook.yaml"), "--run-for", str(seconds), "--rate", "200"],
        capture_output=True, text=True, timeout=120)


def watch_lag(port: int, seen: dict, stop: threading.Event) -> None:
    """Polls `brook up`'s lag server until it reports the ledger group (or `stop`)."""
    while not stop.is_set():
        try:
            # The ledger stores its offsets with its effects (not in Kafka), so the group shows
            # with its members but without committed offsets.
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v3/kafka/brook/consumer/brook-ledger/status", timeout=5) as r:
                body = json.loads(r.read())
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                seen["metrics"] = r.read().decode()
            seen["status"] = body["status"]
            return
        except OSError:
            pass
        time.sleep(0.2)


def test_brook_up_runs_stops_resumes_and_verifies(tmp_path):
    data = tmp_path / "brook"
    port, http, lag = free_port(), free_port(), free_port()
    # `brook up` serves the lag of its own groups (Burrow's API, kafka-lag-exporter's metrics).
    seen: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=watch_lag, args=(lag, seen, stop), daemon=True)
    watcher.start()
    first = up(data, port, http, 10, lag=lag)
    stop.set()
    watcher.join(10)
    assert first.returncode == 0, first.stderr[-3000:]
    assert seen.get("status", {}).get("group") == "brook-ledger", seen
    assert 'kafka_consumergroup_group_sum_lag{cluster_name="brook",group="brook-ledger"}' in seen["metrics"], seen["metrics"][:2000]
    assert "generated" in first.stdout and "outbox credits" in first.stdout and "stopped cleanly" in first.stdout, first.stdout[-2000:]
    assert (data / "brook.log").exists() and "logs in" in first.stdout
    pos1 = (data / "generator.json").read_text()
    second = up(data, port, http, 6)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (data / "generator.json").read_text() != pos1  # resumed and went on
    # Verify straight from the stopped broker's data directory (read-only, no broker).
    v = subprocess.run([str(broker_binary()), "ledger", "verify", "--data-dir", str(data / "data"),
                        "--db", f"sqlite:{data / 'ledger.sqlite'}"], capture_output=True, text=True, timeout=120)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "OK" in v.stdout
    # A group with no stored offsets is one clear error, not thousands of differences.
    v = subprocess.run([str(broker_binary()), "ledger", "verify", "--data-dir", str(data / "data"),
                        "--db", f"sqlite:{data / 'ledger.sqlite'}", "--group", "no-such-group"], capture_output=True, text=True, timeout=120)
    assert v.returncode != 0 and "no stored offsets for group 'no-such-group'" in v.stderr and "brook-ledger" in v.stderr, v.stdout + v.stderr
    # Verify against the stopped system's data with a plain broker.
    broker = subprocess.Popen([str(broker_binary()), "broker", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data / "data"),
                               "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        v = subprocess.run([str(broker_binary()), "ledger", "verify", "--bootstrap", f"127.0.0.1:{port}",
                            "--db", f"sqlite:{data / 'ledger.sqlite'}", "--timeout-ms", "20000"],
                           capture_output=True, text=True, timeout=120)
        assert v.returncode == 0, v.stdout + v.stderr
        assert "OK" in v.stdout
        applied = int(v.stdout.split(" applied")[0].split()[-1])
        assert applied > 1000, v.stdout
    finally:
        broker.terminate()
        broker.wait(20)
