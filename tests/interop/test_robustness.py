"""Malformed input on raw sockets: each bad connection is closed, the broker keeps serving."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from confluent_kafka import Producer

from brookutil import read_all, unique

CLOSE_TIMEOUT = 10.0


def header(api_key: int, version: int, correlation_id: int, client_id: bytes | None = b"raw") -> bytes:
    cid = struct.pack(">h", -1) if client_id is None else struct.pack(">h", len(client_id)) + client_id
    return struct.pack(">hhi", api_key, version, correlation_id) + cid


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def connect(bootstrap: str) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.settimeout(CLOSE_TIMEOUT)
    return s


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise AssertionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def assert_closed(s: socket.socket, what: str) -> None:
    """The broker closes the connection (FIN or RST) within CLOSE_TIMEOUT, sending no response."""
    deadline = time.monotonic() + CLOSE_TIMEOUT
    received = b""
    try:
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            received += chunk
        else:
            raise AssertionError(f"{what}: connection still open after {CLOSE_TIMEOUT}s")
    except socket.timeout:
        raise AssertionError(f"{what}: connection still open after {CLOSE_TIMEOUT}s") from None
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    assert received == b"", f"{what}: broker answered {received[:64]!r} instead of closing"


def api_versions_v0(bootstrap: str, version: int = 0, correlation_id: int = 4242) -> tuple[int, dict]:
    """Sends a raw ApiVersions request; returns (error_code, {api_key: (min, max)}) of the v0-shaped reply."""
    s = connect(bootstrap)
    try:
        s.sendall(frame(header(18, version, correlation_id)))
        size, = struct.unpack(">i", recv_exact(s, 4))
        body = recv_exact(s, size)
    finally:
        s.close()
    corr, err, n = struct.unpack(">ihi", body[:10])
    assert corr == correlation_id
    apis = {}
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", body[10 + 6 * i:16 + 6 * i])
        apis[k] = (lo, hi)
    return err, apis


def assert_serving(b) -> None:
    assert b.running(), f"broker process died (status {b.proc.returncode})"
    err, apis = api_versions_v0(b.bootstrap)
    assert err == 0 and 18 in apis and 0 in apis and 1 in apis, (err, apis)
    topic = unique("robust")
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "socket.timeout.ms": 10000,
                  "message.timeout.ms": 20000})
    errs = []
    for i in range(10):
        p.produce(topic, value=b"ok-%d" % i, on_delivery=lambda e, m: errs.append(e) if e else None)
    assert p.flush(30) == 0 and not errs, errs
    assert [r.value for r in read_all(b.bootstrap, topic, 1)] == [b"ok-%d" % i for i in range(10)]


def test_raw_api_versions_v0_works(broker):
    err, apis = api_versions_v0(broker.bootstrap)
    assert err == 0
    # The versions Debian's librdkafka 2.0.2 needs to enable its features.
    for key, need in {0: (0, 3), 1: (0, 4), 3: (0, 0), 8: (1, 2), 9: (1, 1), 10: (0, 0), 11: (0, 0),
                      12: (0, 0), 13: (0, 0), 14: (0, 0), 18: (0, 3), 22: (0, 0)}.items():
        assert key in apis, f"API {key} not advertised"
        lo, hi = apis[key]
        assert lo <= need[0] and hi >= need[1], f"API {key}: advertised {lo}-{hi}, needs {need[0]}-{need[1]}"


def test_api_versions_unsupported_version_answers_v0_with_error(broker):
    err, apis = api_versions_v0(broker.bootstrap, version=999)
    assert err == 35, f"expected UNSUPPORTED_VERSION (35), got {err}"
    assert 18 in apis, "the error reply must still list the broker's ranges"


MALFORMED = {
    # An HTTP request: its first four bytes read as a ~1.2 GB frame size.
    "http-garbage": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    # Random bytes in a plausibly sized frame: api key / version / client id are nonsense.
    "random-frame": frame(bytes([0xFF, 0xFF, 0xFF, 0xFF]) + os.urandom(60)),
    # A negative frame size.
    "negative-size": struct.pack(">i", -5) + b"\x00" * 16,
    # A frame too short to hold a request header.
    "tiny-frame": frame(b"\x00\x12"),
    # A header whose client-id length runs past the frame.
    "client-id-overrun": frame(struct.pack(">hhih", 3, 1, 1, 200) + b"abc"),
    # Unknown API key (1000) and another one past every defined key (32000).
    "unknown-api-key": frame(header(1000, 0, 1)),
    "unknown-api-key-2": frame(header(32000, 3, 2) + b"\x00" * 8),
    # A known API whose body is truncated inside the frame: Metadata v1 announcing 5 topics, giving none.
    "truncated-body": frame(header(3, 1, 3) + struct.pack(">i", 5)),
    # Produce v3 whose topic array claims a billion entries.
    "huge-array-count": frame(header(0, 3, 4) + struct.pack(">hhii", -1, -1, 1000, 1_000_000_000)),
    # A frame announcing 100 MiB + 1 bytes (over socket.request.max.bytes), then a few bytes.
    "oversize-frame": struct.pack(">i", 100 * 1024 * 1024 + 1) + header(18, 0, 5),
    "max-int-frame": struct.pack(">i", 0x7FFFFFFF) + header(18, 0, 6),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_closes_connection_and_broker_keeps_serving(broker, name):
    s = connect(broker.bootstrap)
    s.sendall(MALFORMED[name])
    assert_closed(s, name)
    assert_serving(broker)


def test_truncated_frame_then_eof_closes_connection(broker):
    """Half a frame, then the client's FIN: the broker must close its side, not wait forever."""
    s = connect(broker.bootstrap)
    payload = header(18, 0, 7)
    s.sendall(struct.pack(">i", len(payload) + 100) + payload)
    s.shutdown(socket.SHUT_WR)
    assert_closed(s, "truncated frame + EOF")
    assert_serving(broker)


def test_all_malformed_at_once_and_valid_request_on_other_connection(broker):
    """Bad connections side by side with a good one: the good one is unaffected."""
    good = connect(broker.bootstrap)
    bad = []
    for name, data in sorted(MALFORMED.items()):
        s = connect(broker.bootstrap)
        s.sendall(data)
        bad.append((name, s))
    for name, s in bad:
        assert_closed(s, name)
    # The good connection, opened before the bad ones, still answers (two pipelined requests).
    good.sendall(frame(header(18, 0, 11)) + frame(header(18, 0, 12)))
    for corr in (11, 12):
        size, = struct.unpack(">i", recv_exact(good, 4))
        body = recv_exact(good, size)
        assert struct.unpack(">i", body[:4])[0] == corr
    good.close()
    assert_serving(broker)


def test_oversize_frame_is_refused_without_reading_it(broker):
    """The size check happens before the body arrives: the close comes promptly even though the
    client keeps the 100 MiB it announced to itself."""
    s = connect(broker.bootstrap)
    t0 = time.monotonic()
    s.sendall(struct.pack(">i", 200 * 1024 * 1024) + b"\x00" * 1024)
    assert_closed(s, "200 MiB announcement")
    assert time.monotonic() - t0 < 5
    assert_serving(broker)
