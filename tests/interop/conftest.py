"""Fixtures for Brook's interop suite: a real `brook broker` process per test, driven by real
Kafka clients (kcat, confluent-kafka/librdkafka, kafka-python).

The broker binary is `$BROOK_BIN` or `<repo>/.build/debug/brook` (log level `$BROOK_LOG_LEVEL`,
default info). Every test gets a fresh data directory and a free port. Missing peers or a missing
binary FAIL the run; nothing here skips.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / ".build" / "debug" / "brook"
LOG_TAIL_LINES = 80


def _peer_problems() -> list[str]:
    problems = []
    if shutil.which("kcat") is None:
        problems.append("kcat is not on PATH (run scripts/setup-peers.sh)")
    for mod in ("confluent_kafka", "kafka", "prometheus_client"):
        try:
            __import__(mod)
        except Exception as e:  # noqa: BLE001
            problems.append(f"Python peer {mod!r} cannot be imported: {e} (run scripts/setup-peers.sh)")
    return problems


def pytest_configure(config):
    problems = _peer_problems()
    if problems:
        # A usage error aborts the whole run with a non-zero exit: interop tests never skip.
        raise pytest.UsageError("interop peers missing:\n  " + "\n  ".join(problems))


def broker_binary() -> Path:
    path = Path(os.environ.get("BROOK_BIN", str(DEFAULT_BIN)))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"broker binary {path} not found; build it with `swift build --product brook` "
                    f"or point BROOK_BIN at it", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One `brook broker` process on a fixed port and data dir, which can be killed and restarted.

    Unpacks as `(bootstrap, data_dir, broker)`.
    """

    def __init__(self, binary: Path, data_dir: Path, log_dir: Path, *, port: int | None = None,
                 flush: str | None = None, rebalance_delay_ms: int = 0, extra_args=()):
        self.binary = binary
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.port = port or free_port()
        self.flush = flush
        self.rebalance_delay_ms = rebalance_delay_ms
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None
        self._log_file = None

    # -- unpacking as (bootstrap, data_dir, helper) ------------------------------------------
    def __iter__(self):
        return iter((self.bootstrap, self.data_dir, self))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def args(self) -> list[str]:
        a = [str(self.binary), "broker", "--listen", self.bootstrap, "--data-dir", str(self.data_dir),
             "--group-initial-rebalance-delay-ms", str(self.rebalance_delay_ms),
             "--log-level", os.environ.get("BROOK_LOG_LEVEL", "info")]
        if self.flush:
            a += ["--flush", self.flush]
        return a + self.extra_args

    def start(self, timeout: float = 30.0) -> "Broker":
        assert not self.running(), "broker already running"
        self.starts += 1
        self.log_path = self.log_dir / f"broker-{self.starts}.log"
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args(), stdout=self._log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(self.log_dir))
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"broker exited with status {self.proc.returncode} during startup "
                                     f"(start #{self.starts}):\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"broker did not accept connections on {self.bootstrap} within "
                                     f"{timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _close_log(self):
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def kill(self):
        """kill -9: no chance to flush or close anything."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def stop(self, timeout: float = 15.0, strict: bool = True) -> int | None:
        """SIGTERM and wait; returns the exit status. Client objects that only cyclic garbage still
        holds (futures with exceptions keep frames alive) are collected first, so their connections
        close. If the broker is still running after `timeout`, it is SIGKILLed and, when `strict`,
        an AssertionError is raised (else a warning is issued)."""
        if self.proc is None:
            return None
        gc.collect()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self._close_log()
                msg = f"broker did not exit within {timeout}s of SIGTERM (SIGKILLed):\n{self.log_tail(12)}"
                if strict:
                    raise AssertionError(msg) from None
                warnings.warn(msg)
        self._close_log()
        return self.proc.returncode

    def restart(self, kill: bool = False, timeout: float = 30.0) -> "Broker":
        """Stop (SIGTERM, or SIGKILL when `kill`) and start again on the same port and data dir."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start(timeout=timeout)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        out = []
        for p in sorted(self.log_dir.glob("broker-*.log")):
            try:
                text = p.read_text(errors="replace").splitlines()
            except OSError:
                continue
            out.append(f"--- {p.name} (last {min(lines, len(text))} of {len(text)} lines) ---")
            out.extend(text[-lines:])
        return "\n".join(out) if out else "(no broker log)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    brokers = getattr(item, "_brook_brokers", [])
    if rep.failed and brokers:
        for b in brokers:
            rep.sections.append((f"brook broker log tail (port {b.port}, pid {b.pid})", b.log_tail()))


@pytest.fixture
def broker_factory(request, tmp_path_factory):
    """Start brokers with custom options: `broker_factory(flush="fsync", rebalance_delay_ms=0)`."""
    binary = broker_binary()
    made: list[Broker] = []
    request.node._brook_brokers = made

    def make(*, flush=None, rebalance_delay_ms=0, extra_args=(), start=True) -> Broker:
        base = Path(tempfile.mkdtemp(prefix="brook-interop-", dir=tmp_path_factory.getbasetemp()))
        data_dir = base / "data"
        data_dir.mkdir()
        b = Broker(binary, data_dir, base, flush=flush, rebalance_delay_ms=rebalance_delay_ms,
                   extra_args=extra_args)
        made.append(b)
        if start:
            b.start()
        return b

    yield make

    # A broker that ignores SIGTERM is reported by test_lifecycle.py; here it only warns, so that
    # every other test's result is about what that test checks.
    for b in made:
        b.stop(timeout=10, strict=False)


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A fresh broker (`--group-initial-rebalance-delay-ms 0`); unpack as (bootstrap, data_dir, ctl)."""
    return broker_factory()


@pytest.fixture
def bootstrap(broker) -> str:
    return broker.bootstrap


def pytest_sessionfinish(session, exitstatus):
    # Belt and braces: never leave a broker behind.
    for item in session.items:
        for b in getattr(item, "_brook_brokers", []):
            if b.running():
                b.kill()
    sys.stdout.flush()
