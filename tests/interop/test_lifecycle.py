"""Process lifecycle: SIGTERM stops the broker promptly and cleanly, with or without clients."""

from __future__ import annotations

import signal
import socket
import struct
import subprocess
import time

from confluent_kafka import Producer

from brookutil import read_all, unique

STOP_WITHIN = 10.0


def _sigterm_and_wait(b) -> float:
    t0 = time.monotonic()
    b.proc.send_signal(signal.SIGTERM)
    try:
        rc = b.proc.wait(STOP_WITHIN)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"broker still running {STOP_WITHIN}s after SIGTERM:\n{b.log_tail(15)}") from None
    assert rc == 0, f"broker exited with status {rc} on SIGTERM:\n{b.log_tail(15)}"
    return time.monotonic() - t0


def test_sigterm_when_idle(broker):
    _sigterm_and_wait(broker)
    broker.start()


def test_sigterm_with_connected_clients_then_restart_keeps_data(broker):
    """Clients that stay connected (a producer between sends, a raw connection after one request)
    must not keep the broker from shutting down; Kafka closes them."""
    topic = unique("life")
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(100):
        p.produce(topic, value=str(i).encode())
    assert p.flush(30) == 0
    raw = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    raw.sendall(struct.pack(">ihhih", 10, 18, 0, 1, 0))  # ApiVersions v0, client id null
    assert len(raw.recv(4096)) > 10
    try:
        _sigterm_and_wait(broker)
    finally:
        raw.close()
        del p
    broker.start()
    assert [int(r.value) for r in read_all(broker.bootstrap, topic, 1)] == list(range(100))
