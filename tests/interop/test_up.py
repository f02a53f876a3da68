"""The main job: `brook up` runs the broker, applies brook.yaml, generates trades, applies them
with the ledger workers, serves the status page, stops cleanly at --run-for, and a second run
resumes the same stream; afterwards `brook ledger verify` finds every balance right."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from conftest import REPO_ROOT, broker_binary, free_port


def up(data: Path, port: int, http: int, seconds: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(broker_binary()), "up", "--dir", str(data), "--listen", f"127.0.0.1:{port}", "--http", f"127.0.0.1:{http}",
         "--config", str(REPO_ROOT / "brook.yaml"), "--run-for", str(seconds), "--rate", "200"],
        capture_output=True, text=True, timeout=120)


def test_brook_up_runs_stops_resumes_and_verifies(tmp_path):
    data = tmp_path / "brook"
    port, http = free_port(), free_port()
    first = up(data, port, http, 10)
    assert first.returncode == 0, first.stderr[-3000:]
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
