"""A throwaway PostgreSQL cluster for the ledger tests: initdb into a temp dir, pg_ctl start on a
free port with a unix socket only (nothing on the network), stopped at the end of the session.

initdb refuses to run as root, so as root the cluster runs as the `postgres` user through
`runuser` (created as a system user when absent). Missing binaries FAIL the run: never a skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import random
import shutil
import subprocess
import tempfile
import uuid


def _bin_dir() -> str:
    initdb = shutil.which("initdb")
    if initdb:
        d = os.path.dirname(os.path.realpath(initdb))
        if os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    raise AssertionError("PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/setup-peers.sh")


class PostgresCluster:
    def __init__(self):
        self.bin = _bin_dir()
        self.dir = tempfile.mkdtemp(prefix="brook-pg-")
        self.run_as: list[str] = []
        if os.getuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"], check=True)
                pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.port = 0
        self.databases = 0

    def _run(self, args: list[str]):
        r = subprocess.run(self.run_as + args, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    def start(self) -> "PostgresCluster":
        self._run([f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        last = None
        for _ in range(5):
            port = random.randint(20000, 60000)
            opts = f"-p {port} -k {self.dir} -c listen_addresses= -c max_connections=200"
            try:
                self._run([f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/server.log", "-w", "-t", "60", "-o", opts, "start"])
                self.port = port
                return self
            except AssertionError as e:  # port taken: try another
                last = e
        raise last

    def fresh_database(self) -> str:
        """A new empty database; returns Brook's --db URL for it."""
        self.databases += 1
        name = f"chaos{self.databases}_{uuid.uuid4().hex[:6]}"
        self._run([f"{self.bin}/createdb", "-h", self.dir, "-p", str(self.port), "-U", "postgres", name])
        return f"postgres://postgres@/{name}?host={self.dir}&port={self.port}"

    def stop(self):
        if self.port:
            subprocess.run(self.run_as + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "stop"],
                           capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
