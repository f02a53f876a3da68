"""The balance-update service under kill -9: several `brook ledger run` workers in one group,
events flowing from `brook ledger generate`, a random worker SIGKILLed and restarted every
couple of seconds; afterwards `brook ledger verify` recomputes every balance from the topic and
the DLT and must find no difference, and every event must be processed exactly once — on SQLite
and on a real PostgreSQL server.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import broker_binary
from pgcluster import PostgresCluster

TOPICS_YAML = """
topics:
  - name: trades
    partitions: 12
  - name: trades.dlt
    partitions: 2
  - name: trades.quarantine
    partitions: 1
    config:
      cleanup.policy: compact
"""

EVENTS = 6000
ACCOUNTS = 300
WORKERS = 3


@pytest.fixture(scope="module")
def postgres():
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


def run(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(broker_binary())] + args, capture_output=True, text=True, timeout=kw.pop("timeout", 180), **kw)


class Worker:
    def __init__(self, bootstrap: str, db: str, index: int, log_dir: Path):
        self.args = [str(broker_binary()), "ledger", "run", "--bootstrap", bootstrap, "--db", db, "--instance-id", f"w{index}"]
        self.log_dir = log_dir
        self.index = index
        self.starts = 0
        self.proc: subprocess.Popen | None = None

    def start(self):
        self.starts += 1
        log = open(self.log_dir / f"worker{self.index}-{self.starts}.log", "wb")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError(f"worker {self.index} ignored SIGTERM for 30 s")


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_kill9_workers_while_events_flow_then_verify(store, broker, tmp_path, postgres):
    bootstrap = broker.bootstrap
    yaml = tmp_path / "brook.yaml"
    yaml.write_text(TOPICS_YAML)
    r = run(["topics", "apply", "-f", str(yaml), "--bootstrap", bootstrap])
    assert r.returncode == 0, r.stderr
    db = f"sqlite:{tmp_path / 'ledger.sqlite'}" if store == "sqlite" else postgres.fresh_database()

    workers = [Worker(bootstrap, db, i, tmp_path) for i in range(WORKERS)]
    for w in workers:
        w.start()
    gen = subprocess.Popen(
        [str(broker_binary()), "ledger", "generate", "--bootstrap", bootstrap, "--accounts", str(ACCOUNTS),
         "--events", str(EVENTS), "--rate", "600", "--seed", "7", "--poison-rate", "0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kills = 0
    rng = random.Random(1)
    try:
        while gen.poll() is None:
            time.sleep(1.5)
            victim = rng.choice(workers)
            victim.kill9()
            kills += 1
            time.sleep(0.3)
            victim.start()
        out, err = gen.communicate(timeout=60)
        assert gen.returncode == 0, f"generator failed: {err}"
        # Keep killing for a little while after the last event, then let everyone finish.
        for _ in range(2):
            victim = rng.choice(workers)
            victim.kill9()
            kills += 1
            victim.start()
            time.sleep(1.0)
        v = run(["ledger", "verify", "--bootstrap", bootstrap, "--db", db, "--wait-seconds", "120"], timeout=240)
        assert v.returncode == 0, f"verify found differences after {kills} kills:\n{v.stdout}\n{v.stderr}"
        assert "OK" in v.stdout
        # Everything was consumed, and most of it applied (the rest: rejections, poison, parked).
        assert "(0 not consumed yet)" in v.stdout, v.stdout
        applied = int(re.search(r"(\d+) applied, (\d+) rejected, (\d+) skipped", v.stdout).group(1))
        assert applied >= EVENTS // 2, v.stdout
        assert kills >= 5
        print(f"{store}: {kills} kills; {v.stdout.strip()}")
    finally:
        for w in workers:
            w.kill9()
        if gen.poll() is None:
            gen.kill()
