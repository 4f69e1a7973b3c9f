"""A Dask cluster with mutual TLS on this machine: a scheduler and workers as child processes.

For the cluster tests and ``bench grading``; an instructor starts the same processes by hand (see
autograder/README.md, "Grading on a Dask cluster").
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DASK = str(Path(sys.executable).parent / "dask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A TLS scheduler and workers, as processes of this test."""

    def __init__(self, tls: Path, tmp: Path):
        self.tls, self.tmp = tls, tmp
        self.port = free_port()
        self.address = f"tls://127.0.0.1:{self.port}"
        self.workers: list[subprocess.Popen] = []
        self.scheduler = self._start([DASK, "scheduler", "--protocol", "tls", "--port", str(self.port),
                                      "--no-dashboard", *self._tls("scheduler")], "scheduler")
        self._wait_for(lambda: self._connectable(), "the scheduler")

    def _tls(self, role):
        return ["--tls-ca-file", str(self.tls / "ca.pem"), "--tls-cert", str(self.tls / f"{role}.pem"),
                "--tls-key", str(self.tls / f"{role}-key.pem")]

    def _start(self, args, name, env=None):
        log = open(self.tmp / f"{name}-{len(self.workers)}-{time.monotonic_ns()}.log", "w")
        return subprocess.Popen(args, stdout=log, stderr=log, cwd=self.tmp, start_new_session=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})

    def _connectable(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    @staticmethod
    def _wait_for(ready, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.2)
        raise AssertionError(f"{what} did not start")

    def add_worker(self, env=None, wait=True) -> subprocess.Popen:
        before = self.n_workers()
        proc = self._start([DASK, "worker", self.address, "--nthreads", "1", "--no-nanny", *self._tls("worker")],
                           "worker", env)
        self.workers.append(proc)
        if wait:
            self._wait_for(lambda: self.n_workers() > before, "a worker")
        return proc

    def n_workers(self) -> int:
        from distributed import Client
        from distributed.security import Security

        sec = Security(tls_ca_file=str(self.tls / "ca.pem"), tls_client_cert=str(self.tls / "client.pem"),
                       tls_client_key=str(self.tls / "client-key.pem"), require_encryption=True)
        with Client(self.address, security=sec, timeout=10, set_as_default=False) as client:
            return len(client.scheduler_info()["workers"])

    def kill(self, proc):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def close(self):
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                self.kill(proc)
