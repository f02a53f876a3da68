"""librdkafka's mock cluster (Debian's librdkafka-dev 2.0.2, rdkafka_mock.h) behind a small C helper,
tests/mock/brook_mock_cluster.c, and a runner for the `brook` CLI client.

The helper is compiled on first use into <repo>/.build/mock/ (ignored by git). A missing compiler
or header FAILS the test: nothing here skips.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HELPER_SRC = REPO_ROOT / "tests" / "mock" / "brook_mock_cluster.c"
HELPER_BIN = REPO_ROOT / ".build" / "mock" / "brook_mock_cluster"
MOCK_HEADER = Path("/usr/include/librdkafka/rdkafka_mock.h")

# Kafka API keys and error codes used by the fault tests.
PRODUCE, FETCH, LIST_OFFSETS, METADATA, OFFSET_COMMIT, OFFSET_FETCH = 0, 1, 2, 3, 8, 9
FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, SYNC_GROUP, INIT_PRODUCER_ID = 10, 11, 12, 14, 22
NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR = 6, 7, 15, 16
TRANSPORT = -195  # librdkafka's RD_KAFKA_RESP_ERR__TRANSPORT: the mock broker drops the connection


def build_helper() -> Path:
    """Compiles the helper if it is missing or older than its source; fails (never skips) when
    gcc or librdkafka-dev's mock header is missing."""
    gcc = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if gcc is None:
        pytest.fail("no C compiler (gcc, cc, clang) on PATH: cannot build the librdkafka mock-cluster helper "
                    "(run scripts/setup-peers.sh)", pytrace=False)
    if not MOCK_HEADER.is_file():
        pytest.fail(f"{MOCK_HEADER} is missing: install librdkafka-dev (run scripts/setup-peers.sh)",
                    pytrace=False)
    if HELPER_BIN.is_file() and HELPER_BIN.stat().st_mtime >= HELPER_SRC.stat().st_mtime:
        return HELPER_BIN
    HELPER_BIN.parent.mkdir(parents=True, exist_ok=True)
    tmp = HELPER_BIN.with_suffix(f".tmp{os.getpid()}")
    r = subprocess.run([gcc, "-O1", "-Wall", "-o", str(tmp), str(HELPER_SRC), "-lrdkafka"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"building {HELPER_SRC.name} failed:\n{r.stdout}{r.stderr}", pytrace=False)
    os.replace(tmp, HELPER_BIN)
    return HELPER_BIN


class MockCluster:
    """A running mock cluster; `cmd("down 1")` applies a command and returns the helper's answer."""

    def __init__(self, brokers: int = 3, topics: dict[str, int] | None = None, log_dir: Path | None = None):
        binary = build_helper()
        args = [str(binary), str(brokers)] + [f"{t}:{p}" for t, p in (topics or {}).items()]
        self._stderr = open(log_dir / "mock-cluster.log", "wb") if log_dir else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True, bufsize=1)
        self.brokers = brokers
        line = self.proc.stdout.readline().strip()
        if not line:
            self.close()
            raise AssertionError(f"mock cluster helper printed no bootstrap line (exit {self.proc.poll()})")
        self.bootstrap = line
        self.lock = threading.Lock()

    def cmd(self, command: str) -> str:
        with self.lock:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise AssertionError(f"mock cluster command {command!r} failed: {answer or '(helper exited)'}")
        return answer

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        if self._stderr is not subprocess.DEVNULL:
            self._stderr.close()


class BrookProcess:
    """A `brook` CLI subprocess whose stdout lines are collected by a thread as they arrive."""

    def __init__(self, binary: Path, args: list[str], stdin=subprocess.DEVNULL, log: Path | None = None):
        self.args = [str(binary)] + args
        self._err = open(log, "wb") if log else subprocess.PIPE
        self.proc = subprocess.Popen(self.args, stdin=stdin, stdout=subprocess.PIPE, stderr=self._err)
        self.lines: list[str] = []
        self._q: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.log = log

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def write(self, data: str):
        self.proc.stdin.write(data.encode())
        self.proc.stdin.flush()

    def close_stdin(self):
        self.proc.stdin.close()

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{' '.join(self.args[1:3])} did not exit within {timeout}s; "
                                 f"stderr:\n{self.stderr()}") from None
        self._reader.join(10)
        return rc

    def terminate(self, timeout: float = 10.0):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)

    def stderr(self) -> str:
        if self.log:
            if isinstance(self._err, int):
                return ""
            self._err.flush()
            return Path(self.log).read_text(errors="replace")[-4000:]
        if self.proc.stderr and self.proc.poll() is not None:
            return self.proc.stderr.read().decode(errors="replace")[-4000:]
        return ""
