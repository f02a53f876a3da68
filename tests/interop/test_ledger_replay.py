"""Poison records, quarantine and replay, end to end on the ledger.

Events are written by confluent-kafka (a real client, not ours). A worker deployed without GBP
dead-letters alice's GBP deposit with provenance headers, parks alice's later events behind it
(her GBP withdrawal would be rejected for insufficient funds if it ran first), and keeps every
other account flowing. bob's truncated JSON can never be fixed. After the fix (a worker that
books GBP), `brook dlt replay` applies alice's events exactly once and in their original order;
bob's record fails again and stays quarantined with his later event; a second replay is refused
by the loop guard; `brook ledger verify` agrees with the database throughout.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from brookutil import wait_for
from conftest import broker_binary

TOPICS_YAML = """
topics:
  - name: trades
    partitions: 4
  - name: trades.dlt
    partitions: 1
  - name: trades.quarantine
    partitions: 1
    config:
      cleanup.policy: compact
"""

OK_ACCOUNTS = [f"acct-{i:02d}" for i in range(20)]


def event(id_: str, account: str, type_: str, amount: int, currency: str) -> bytes:
    return json.dumps({"v": 1, "id": id_, "account": account, "type": type_, "amount": amount,
                       "currency": currency}).encode()


def brook(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(broker_binary()), *args], capture_output=True, text=True, timeout=timeout)


class Worker:
    started: list["Worker"] = []

    def __init__(self, bootstrap: str, db: Path, log: Path, *extra: str):
        self.log = log
        self.proc = subprocess.Popen(
            [str(broker_binary()), "ledger", "run", "--bootstrap", bootstrap, "--db", f"sqlite:{db}", *extra],
            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        Worker.started.append(self)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(30) == 0, self.log.read_text()[-3000:]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("worker ignored SIGTERM")

    def alive(self):
        assert self.proc.poll() is None, "worker died:\n" + self.log.read_text()[-3000:]


@pytest.fixture(autouse=True)
def no_leftover_workers():
    """A failed assertion must not leave workers running into the next tests."""
    yield
    for w in Worker.started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
    Worker.started.clear()


def query(db: Path, sql: str, *args):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def balances(db: Path, account: str) -> dict[str, int]:
    return dict(query(db, "SELECT currency, amount FROM balances WHERE account = ?", account))


def processed(db: Path) -> dict[str, tuple[str, int, int]]:
    """event id → (status, partition, source offset)."""
    try:
        rows = query(db, "SELECT event_id, status, part, source_offset FROM processed_events")
    except sqlite3.OperationalError:  # the worker has not created its tables yet
        return {}
    return {e: (s, p, o) for e, s, p, o in rows}


def dlt_records(bootstrap: str) -> list[tuple[str, dict[str, str], dict]]:
    """(key, headers, value) of every record in trades.dlt, read by confluent-kafka."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dlt-reader", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition("trades.dlt", 0), timeout=10)
        c.assign([TopicPartition("trades.dlt", 0, lo)])
        out = []
        while len(out) < hi - lo:
            m = c.poll(10)
            assert m is not None, f"read {len(out)} of {hi - lo} dead letters"
            assert m.error() is None, m.error()
            headers = {k: (v or b"").decode(errors="replace") for k, v in (m.headers() or [])}
            out.append((m.key().decode(), headers, m.value()))
        return out
    finally:
        c.close()


def verify(bootstrap: str, db: Path):
    r = brook("ledger", "verify", "--bootstrap", bootstrap, "--db", f"sqlite:{db}", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


def test_poison_quarantine_fix_and_replay(broker, tmp_path):
    bootstrap = broker.bootstrap
    (tmp_path / "brook.yaml").write_text(TOPICS_YAML)
    r = brook("topics", "apply", "-f", str(tmp_path / "brook.yaml"), "--bootstrap", bootstrap)
    assert r.returncode == 0, r.stderr
    db = tmp_path / "ledger.sqlite"

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    sent = []

    def send(account: str, value: bytes):
        sent.append(account)
        p.produce("trades", key=account.encode(), value=value)

    send("alice", event("a1", "alice", "deposit", 10_000, "USD"))
    send("bob", event("b1", "bob", "deposit", 1_000, "USD"))
    for a in OK_ACCOUNTS:
        send(a, event(f"{a}-1", a, "deposit", 1_000, "EUR"))
    send("alice", event("a2", "alice", "deposit", 5_000, "GBP"))      # not booked by the first worker
    send("bob", b'{"v":1,"id":"b2","account":"bob","type":"deposit","amount":12')  # never decodable
    send("alice", event("a3", "alice", "withdrawal", 2_000, "GBP"))   # needs a2 first
    for a in OK_ACCOUNTS:
        send(a, event(f"{a}-2", a, "withdrawal", 400, "EUR"))
    send("alice", event("a4", "alice", "deposit", 300, "USD"))
    send("bob", event("b3", "bob", "deposit", 50, "USD"))
    assert p.flush(30) == 0
    del p

    # --- a deployment that does not book GBP ------------------------------------------------
    w = Worker(bootstrap, db, tmp_path / "worker-1.log", "--currencies", "USD,EUR")
    ok_ids = {f"{a}-{n}" for a in OK_ACCOUNTS for n in (1, 2)}
    wait_for(lambda: (w.alive(), db.exists() and ok_ids | {"a1", "b1"} <= set(processed(db)))[1], 90,
             "the healthy accounts' events applied")
    wait_for(lambda: len(dlt_records(bootstrap)) == 5, 60, "5 dead letters")
    done = processed(db)
    assert not {"a2", "a3", "a4", "b2", "b3"} & set(done), done
    for a in OK_ACCOUNTS:
        assert balances(db, a) == {"EUR": 600}
    assert balances(db, "alice") == {"USD": 10_000}

    dlt = dlt_records(bootstrap)
    by_id = {}
    for key, h, value in dlt:
        assert h["brook.dlt.original.topic"] == "trades"
        assert h["brook.dlt.group"] == "brook-ledger"
        assert int(h["brook.dlt.original.offset"]) >= 0 and int(h["brook.dlt.original.partition"]) in range(4)
        assert int(h["brook.dlt.original.timestamp"]) > 0
        assert "brook.dlt.error.type" in h and "brook.dlt.attempts" in h
        try:
            by_id[json.loads(value)["id"]] = (key, h)
        except json.JSONDecodeError:
            by_id["b2"] = (key, h)
    assert set(by_id) == {"a2", "a3", "a4", "b2", "b3"}
    assert by_id["a2"][1]["brook.dlt.reason"] == "failed"
    assert by_id["a2"][1]["brook.dlt.error.type"] == "InvalidEvent"
    assert "GBP" in by_id["a2"][1]["brook.dlt.error.message"]
    assert by_id["b2"][1]["brook.dlt.reason"] == "failed"
    assert by_id["b2"][1]["brook.dlt.error.type"] == "DecodeError" or "Undecodable" in by_id["b2"][1]["brook.dlt.error.type"]
    for parked in ("a3", "a4", "b3"):
        assert by_id[parked][1]["brook.dlt.reason"] == "parked", by_id[parked]
    # The partition and offset in the headers point at the original record.
    a2_part, a2_off = int(by_id["a2"][1]["brook.dlt.original.partition"]), int(by_id["a2"][1]["brook.dlt.original.offset"])
    assert a2_part == done["a1"][1] and a2_off > done["a1"][2]

    listing = brook("dlt", "list", "--bootstrap", bootstrap)
    assert listing.returncode == 0, listing.stderr
    assert "5 dead letter(s)" in listing.stderr
    reasons = sorted((row.split()[2], row.split()[3]) for row in listing.stdout.splitlines()[1:])
    assert reasons == [("alice", "failed"), ("alice", "parked"), ("alice", "parked"), ("bob", "failed"), ("bob", "parked")], listing.stdout
    verify(bootstrap, db)

    # --- the fix: a deployment that books GBP, then replay ----------------------------------
    w.stop()
    w = Worker(bootstrap, db, tmp_path / "worker-2.log")
    dry = brook("dlt", "replay", "--bootstrap", bootstrap, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 5 replayed" in dry.stdout, dry.stdout
    time.sleep(1)
    assert not {"a2", "a3", "a4"} & set(processed(db)), "a dry run replayed something"

    rep = brook("dlt", "replay", "--bootstrap", bootstrap)
    assert rep.returncode == 0, rep.stderr
    assert "5 replayed, 0 refused" in rep.stdout, rep.stdout
    wait_for(lambda: (w.alive(), {"a2", "a3", "a4"} <= set(processed(db)))[1], 60, "alice's events applied after replay")
    done = processed(db)
    # Applied (not rejected: a3 ran after a2), in their original order, each once.
    assert [done[e][0] for e in ("a2", "a3", "a4")] == ["applied"] * 3, done
    assert done["a2"][2] < done["a3"][2] < done["a4"][2], done
    assert balances(db, "alice") == {"USD": 10_300, "GBP": 3_000}
    # bob's record is still poison: it fails again, and b3 stays parked behind it.
    wait_for(lambda: len(dlt_records(bootstrap)) == 7, 60, "bob's two records dead-lettered again")
    again = {("b3" if b'"b3"' in v else "b2"): h for _, h, v in dlt_records(bootstrap)[5:]}
    assert set(again) == {"b2", "b3"}
    assert again["b2"]["brook.dlt.replay.count"] == "1" and again["b2"]["brook.dlt.reason"] == "failed"
    assert again["b3"]["brook.dlt.reason"] == "parked"
    assert "b2" not in done and "b3" not in done
    assert balances(db, "bob") == {"USD": 1_000}
    verify(bootstrap, db)

    # --- loop guard: bob's records were replayed once; at most one replay is allowed --------
    guard = brook("dlt", "replay", "--bootstrap", bootstrap, "--max-replays", "1")
    assert guard.returncode == 0, guard.stderr
    assert "0 replayed" in guard.stdout and "refused" in guard.stdout, guard.stdout
    assert "key=bob" in guard.stdout
    time.sleep(2)
    assert len(dlt_records(bootstrap)) == 7
    assert balances(db, "alice") == {"USD": 10_300, "GBP": 3_000}
    for a in OK_ACCOUNTS:
        assert balances(db, a) == {"EUR": 600}
    w.stop()
    verify(bootstrap, db)
