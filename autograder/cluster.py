"""Grading on a Dask cluster: mutual TLS, workers that match the grader, and faults that end cleanly.

Threat model: the scheduler and the workers are the instructor's hosts and run as root; what is
untrusted is the student's code *inside* the sealed jobs those workers start. Those jobs have no
network (their namespace holds only a loopback that is down), so they cannot reach the scheduler;
and even a process that could would need the client key, which no job can see. Jobs sent to
workers carry notebooks, inputs and limits — never expected values or mistakes' outputs: those
stay in the grading process, which judges what comes back.

* Connections use TLS with mutual authentication (distributed's ``Security``); the certificates
  come from :func:`make_certificates` (``python -m autograder cluster certs``). A ``tcp://``
  scheduler is refused unless explicitly allowed.
* Workers must run the same grader: a content hash of ``autograder``, the grading specs,
  ``mlp_lib``, Python and numpy (:func:`fingerprint`) is compared on every worker before any job
  is sent and again in every job; a worker that differs is refused, and the message names what
  differs.
* No worker for ``no_worker_timeout`` seconds ends the run with :class:`ClusterError`; results
  received so far are kept by the caller.
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import time
from pathlib import Path

from . import jobs as jobs_module

_PACKAGE = Path(__file__).resolve().parent
_REPOSITORY = _PACKAGE.parent


class ClusterError(RuntimeError):
    """The cluster cannot be used (a refused address, mismatched or missing workers): one clear line."""


class WorkerMismatch(RuntimeError):
    """This worker runs a different grader than the one that sent the job."""


def _tree_hash(root: Path, patterns=("*.py",)) -> str:
    h = hashlib.sha256()
    if root.is_dir():
        for pattern in patterns:
            for path in sorted(root.rglob(pattern)):
                if "__pycache__" in path.parts:
                    continue
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def can_seal() -> list:
    """What this worker host lacks to seal a job (empty: nothing)."""
    from .sandbox import sealing_problems

    return list(sealing_problems())


def fingerprint() -> dict[str, str]:
    """What a worker must share with the grader, by component."""
    import numpy

    specs = hashlib.sha256()
    solutions = _REPOSITORY / "solutions"
    if solutions.is_dir():
        for path in sorted(solutions.glob("*/*.py")):
            specs.update(str(path.relative_to(solutions)).encode())
            specs.update(path.read_bytes())
    return {"autograder": jobs_module.code_fingerprint(), "grading specs": specs.hexdigest()[:16],
            "mlp_lib": _tree_hash(_REPOSITORY / "mlp_lib"), "python": platform.python_version(),
            "numpy": numpy.__version__}


def differences(mine: dict, theirs: dict) -> list[str]:
    return [f"{k} ({theirs.get(k, '?')} on the worker, {mine[k]} here)" for k in mine if theirs.get(k) != mine[k]]


def run_checked(job, expected: dict):
    """The worker half, on a worker that matches the grader."""
    from .pipeline import run_on_worker

    diff = differences(expected, fingerprint())
    if diff:
        raise WorkerMismatch("this worker runs a different grader: " + "; ".join(diff))
    return run_on_worker(job)


def security(course, *, allow_insecure: bool = False, address: str = ""):
    """distributed's Security for this course's certificates, or None for an allowed insecure address."""
    from distributed.security import Security

    if address.startswith("tcp://") or "://" not in address:
        if not allow_insecure:
            raise ClusterError(f"refusing the insecure scheduler address {address!r}: use tls:// with the "
                               "course's certificates (python -m autograder cluster certs), or pass "
                               "--allow-insecure-cluster on a network no student can reach")
        return None
    ca, cert, key = course.cluster_certificates()
    for path in (ca, cert, key):
        if not path.is_file():
            raise ClusterError(f"missing TLS file {path} (create them with python -m autograder cluster certs)")
    return Security(tls_ca_file=str(ca), tls_client_cert=str(cert), tls_client_key=str(key),
                    require_encryption=True)


def run(jobs, address: str, *, security=None, no_worker_timeout: float = 60.0, sealed: bool = True):
    """Yield (job, WorkerResult or exception) as jobs finish on the cluster."""
    from distributed import Client, as_completed

    expected = fingerprint()
    try:
        client = Client(address, security=security, set_as_default=False, timeout=20)
    except OSError as exc:
        raise ClusterError(f"cannot connect to the scheduler at {address}: {exc}") from None
    with client:
        allowed = _matching_workers(client, expected, no_worker_timeout, sealed)
        futures = {client.submit(run_checked, job, expected, pure=False, workers=allowed,
                                 allow_other_workers=False): job for job in jobs}
        pending = as_completed(list(futures), loop=client.loop)
        alone_since, left = None, len(futures)
        while left:
            batch = pending.next_batch(block=False)
            for fut in batch:
                left -= 1
                job = futures[fut]
                try:
                    yield job, fut.result()
                except Exception as exc:   # noqa: BLE001 - a lost worker, a mismatch, a serialization error
                    yield job, exc
            if batch or not left:
                continue
            time.sleep(0.2)
            if client.scheduler_info().get("workers"):
                alone_since = None
                continue
            alone_since = alone_since or time.monotonic()
            if time.monotonic() - alone_since > no_worker_timeout:
                for fut in futures:
                    fut.cancel()
                raise ClusterError(f"no worker has been connected to {address} for {no_worker_timeout:g} s; "
                                   f"{left} notebooks are not graded (start workers and run the same command "
                                   "again: finished results are kept)")


def _matching_workers(client, expected: dict, wait_for: float, sealed: bool) -> list[str]:
    deadline = time.monotonic() + wait_for
    while not client.scheduler_info().get("workers") and time.monotonic() < deadline:
        time.sleep(0.5)
    reports = client.run(fingerprint)
    if not reports:
        raise ClusterError(f"the scheduler has had no workers for {wait_for:g} s")
    unsealable = client.run(can_seal) if sealed else {}
    good, refused = [], []
    for worker, theirs in sorted(reports.items()):
        diff = differences(expected, theirs)
        if diff:
            refused.append(f"{worker}: runs a different grader: " + "; ".join(diff))
        elif unsealable.get(worker):
            refused.append(f"{worker}: cannot seal the students' code (" + "; ".join(unsealable[worker]) + ")")
        else:
            good.append(worker)
    if refused and not good:
        raise ClusterError("no worker can be used: " + " | ".join(refused))
    for line in refused:
        print(f"warning: refusing worker {line}")
    return good


# -- certificates ---------------------------------------------------------------------------------
ROLES = ("scheduler", "worker", "client")


def make_certificates(folder: Path, *, hosts=("localhost", "127.0.0.1"), days: int = 365) -> list[Path]:
    """A private CA and a certificate per role (scheduler, worker, client), written with ``openssl``."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
            "-days", str(days), "-subj", "/CN=autograder course CA")
    san = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
    written = [folder / "ca.pem"]
    for role in ROLES:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{role}-key.pem", "-out", f"{role}.csr",
                "-subj", f"/CN=autograder {role}")
        (folder / f"{role}.ext").write_text(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", f"{role}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-out", f"{role}.pem", "-days", str(days), "-extfile", f"{role}.ext")
        (folder / f"{role}.csr").unlink()
        (folder / f"{role}.ext").unlink()
        written += [folder / f"{role}.pem", folder / f"{role}-key.pem"]
    for path in folder.iterdir():
        os.chmod(path, 0o600)
    return written
