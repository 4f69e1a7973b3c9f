"""Local grading workers: processes that run the worker half of jobs, one job at a time each.

Unlike ``concurrent.futures.ProcessPoolExecutor``, one dead worker does not break the pool: its
job is given to a fresh worker once, and a job that kills two workers is reported as a grader-side
error for that student (the previous result is kept). Workers ignore Ctrl-C (the grader decides
what an interrupt means), and they die with the grader — ``PR_SET_PDEATHSIG`` plus a watchdog on
the parent — taking their jobs with them (a job's launcher dies with its worker, and the job's
namespace with its launcher).
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from multiprocessing import get_context
from multiprocessing.connection import wait

PR_SET_PDEATHSIG = 1


class WorkerLost(RuntimeError):
    """A worker process died while running a job (twice for the same job)."""


def die_with_parent() -> None:
    """SIGKILL when the parent dies; a watchdog thread covers a parent that dies before prctl takes hold."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass

    def watch():
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


def _worker_main(conn, initializer) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    if initializer is not None:
        initializer()
    from .pipeline import run_on_worker

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            outcome = run_on_worker(job)
        except Exception as exc:   # noqa: BLE001 - a grader-side failure of one job must not stop the worker
            outcome = RuntimeError(f"{type(exc).__name__}: {exc}")
        conn.send(outcome)


class LocalPool:
    """``workers`` processes; :meth:`run` yields (job, WorkerResult or exception) as jobs finish."""

    def __init__(self, workers: int, *, initializer=None):
        self.size = max(1, workers)
        self.initializer = initializer
        self.context = get_context("spawn")
        self.procs: list = []

    def _spawn(self):
        parent, child = self.context.Pipe()
        proc = self.context.Process(target=_worker_main, args=(child, self.initializer), daemon=True)
        proc.start()
        child.close()
        return proc, parent

    def run(self, jobs):
        pending = list(jobs)[::-1]
        attempts: dict[int, int] = {}
        idle = [self._spawn() for _ in range(min(self.size, len(pending)))]
        self.procs = [p for p, _ in idle]
        busy: dict = {}                          # conn -> (proc, job)
        try:
            while pending or busy:
                while pending and idle:
                    proc, conn = idle.pop()
                    job = pending.pop()
                    conn.send(job)
                    busy[conn] = (proc, job)
                ready = wait(list(busy) + [proc.sentinel for proc, _ in busy.values()])
                for conn in list(busy):
                    proc, job = busy[conn]
                    if conn not in ready and proc.sentinel not in ready:
                        continue
                    outcome, died = None, False
                    if conn.poll():
                        try:
                            outcome = conn.recv()
                        except (EOFError, OSError):
                            died = True
                    else:
                        died = not proc.is_alive() or proc.sentinel in ready
                    if outcome is not None:
                        del busy[conn]
                        idle.append((proc, conn))
                        yield job, outcome
                    elif died:
                        del busy[conn]
                        proc.join(timeout=5)
                        conn.close()
                        n = attempts[id(job)] = attempts.get(id(job), 0) + 1
                        if n < 2:
                            pending.append(job)
                        else:
                            yield job, WorkerLost(f"a grading worker died twice on this notebook "
                                                  f"(exit code {proc.exitcode})")
                        replacement = self._spawn()
                        self.procs.append(replacement[0])
                        idle.append(replacement)
        finally:
            self.close(busy, idle)

    def close(self, busy=None, idle=None) -> None:
        for proc, conn in list((idle or [])):
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in self.procs:
            if proc.is_alive() and busy and any(p is proc for p, _ in busy.values()):
                proc.terminate()            # a job in progress: the worker's launcher and job die with it
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self.procs = []
