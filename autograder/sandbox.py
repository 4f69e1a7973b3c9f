"""Run one recording of a student's notebook in a sealed job, under limits, and bring back only data.

This is the supervisor, on the worker host (trusted). What happens inside the job is in
:mod:`autograder.inside`; here:

1. a fresh job directory (root-only): the job's instructions, its inputs (``.npy``, read-only for
   the job), the release's data files, and an empty mount point for the job's root;
2. a sandbox *slot*: a uid/gid of its own (``limits.uid_base + slot``, no account, no groups) and
   the slot's memory and pids control groups (:mod:`autograder.cgroups`), emptied first;
3. the launcher (:mod:`autograder.inside.launch`) in a new session, which seals the job — new
   mount, PID, network, IPC and UTS namespaces, a size-capped tmpfs root with only the interpreter,
   numpy and the kernel, the cgroups, the uid drop — and starts the kernel;
4. wall-clock budgets per cell (SIGINT through the launcher, then the whole job ended if it is
   ignored) and per notebook; the job dies with this process (PDEATHSIG down the chain);
5. afterwards: every process of the slot is gone (the job's namespace died with its init; the
   cgroups' members are killed to be sure), and the outputs the launcher copied out are read —
   checked ``.npy`` headers, numeric or string dtypes only, ``allow_pickle=False``.

A job is *sealed* only as root with namespaces and cgroups available (:func:`sealing_problems`
says what is missing otherwise). Unsealed, the kernel runs as the caller with rlimits and the
kernel's import guard: fine for a student's self-check, not for untrusted code.
"""
from __future__ import annotations

import ctypes
import fcntl
import functools
import glob
import importlib.util
import json
import os
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import cgroups
from .compare import CaseOutput
from .inside import harness
from .limits import Limits

MAX_JSON_BYTES = 64 * 1024
MAX_PROGRESS_BYTES = 1 << 20
HOME = "/home/student"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_INSIDE = Path(__file__).resolve().parent / "inside"
JOB_PREFIX = "autograder-job-"


class SandboxError(RuntimeError):
    """The sandbox itself failed (a grader-side problem: the student is not charged)."""


@dataclass
class Recording:
    """What one run of the kernel needs: plain data (it travels to workers)."""

    cells: list                    # {"source", "kind": setup | student | instructor | record, "part", "label"}
    parts: dict = field(default_factory=dict)       # part id -> the kernel's description (harness.Job)
    inputs: dict = field(default_factory=dict)      # part id -> [{name: ndarray}]
    helpers: dict = field(default_factory=dict)     # importable helper modules of the spec: name -> source
    calls: dict = field(default_factory=dict)       # adapter name -> source, or "module:<m>:<fn>"
    allow: tuple = ("numpy",)                       # packages an answer may import, besides the stdlib
    extras: dict = field(default_factory=dict)      # release data files: relative path -> bytes
    mode: str = "record"                            # record | notebook (check: every cell, nothing recorded)


@dataclass
class PartOutputs:
    """What the student's process handed back for one part."""

    error: str | None = None                      # e.g. the function is not defined
    cases: list[CaseOutput] = field(default_factory=list)


@dataclass
class Execution:
    status: str = "ok"             # ok | timeout | crashed
    message: str = ""
    returncode: int | None = None
    finished: bool = False         # the kernel reached the end
    cell_errors: dict = field(default_factory=dict)     # cell index -> exception name
    interrupted: list = field(default_factory=list)     # cell indices interrupted by the per-cell budget
    log: str = ""
    seconds: float = 0.0
    sealed: bool = False
    started: bool = False                 # the first cell started (before that, no student code ran)
    sandbox_failure: str | None = None    # the box could not be built: grader-side
    limits_hit: dict = field(default_factory=dict)     # from the cgroups: memory, oom_kills, pids


# -- can this host seal a job? ---------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def sealing_problems() -> tuple[str, ...]:
    """What this host lacks to seal a job (empty when it can): root, namespaces, cgroups."""
    if not sys.platform.startswith("linux"):
        return ("sealed jobs need Linux",)
    if os.geteuid() != 0:
        return ("not running as root: no uid of its own, namespaces or cgroups for the student's code",)
    problems = []
    probe = subprocess.run(["unshare", "--mount", "--pid", "--net", "--ipc", "--uts", "--fork", "true"],
                           capture_output=True, text=True) if shutil.which("unshare") else None
    if probe is None:
        problems.append("cannot check namespaces (no `unshare` command)")
    elif probe.returncode != 0:
        problems.append(f"no mount/pid/network namespaces ({probe.stderr.strip()[:120]})")
    reason = cgroups.unavailable_reason()
    if reason:
        problems.append(reason)
    return tuple(problems)


# -- the sealed filesystem's contents ---------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _filesystem(allow: tuple) -> dict:
    """Read-only binds, masks and symlinks of a job's root: the interpreter, shared libraries, ``allow``."""
    binds, masks, links = [], [], []
    for path in ("/lib", "/lib64", "/usr/lib", "/usr/lib64"):
        if os.path.islink(path):
            links.append([path, os.readlink(path)])
        elif os.path.isdir(path):
            binds.append([path, path])
    if os.path.isfile("/etc/ld.so.cache"):
        binds.append(["/etc/ld.so.cache", "/etc/ld.so.cache"])
    prefix = os.path.realpath(sys.base_prefix)
    exe = os.path.realpath(sys.executable)
    if not any(prefix == b or prefix.startswith(b + os.sep) for b, _ in binds):
        binds.append([prefix, prefix])
    if not any(exe.startswith(b + os.sep) for b, _ in binds):
        binds.append([exe, exe])
    for bound, _ in binds:
        for pattern in ("python3*/site-packages", "python3*/dist-packages", "lib/python3*/site-packages",
                        "lib/python3*/dist-packages", "local/lib/python3*/dist-packages"):
            masks += [p for p in glob.glob(os.path.join(bound, pattern)) if os.path.isdir(p)]
    site = "/sealed/site"
    for package in allow:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise SandboxError(f"the allowed package {package!r} is not installed on this worker")
        folder = os.path.realpath(list(spec.submodule_search_locations)[0])
        binds.append([folder, f"{site}/{package}"])
        libs = f"{folder}.libs"
        if os.path.isdir(libs):
            binds.append([libs, f"{site}/{package}.libs"])
    binds.append([str(_INSIDE.parent / "__init__.py"), f"{site}/autograder/__init__.py"])
    binds.append([str(_INSIDE), f"{site}/autograder/inside"])
    return {"binds": binds, "masks": sorted(set(masks)), "symlinks": links, "site": site, "interpreter": exe}


def _environment(home: str, tmp: str) -> dict:
    return {
        "PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": tmp,
        "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb",
        "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }


# -- running a recording ------------------------------------------------------------------------------
def run(recording: Recording, limits: Limits, *, sealed: bool) -> tuple[Execution, dict]:
    """Execute ``recording``; return (Execution, {part id: PartOutputs, or None if never recorded})."""
    if sealed and sealing_problems():
        raise SandboxError("this host cannot seal a job: " + "; ".join(sealing_problems()))
    _become_subreaper()
    base = Path(limits.job_dir or tempfile.gettempdir())
    remove_stale_job_dirs(base)
    with _slot(limits, sealed) as slot:
        try:
            job_dir = Path(tempfile.mkdtemp(prefix=f"{JOB_PREFIX}{os.getpid()}-", dir=base))
        except OSError as exc:
            raise SandboxError(f"could not create the job directory in {base}: {exc}") from exc
        try:
            os.chmod(job_dir, 0o700)
            return _run_in(job_dir, recording, limits, slot)
        except OSError as exc:    # ENOSPC and friends on the worker's disk: the grader's fault
            raise SandboxError(f"the worker could not prepare or read the job ({exc})") from exc
        finally:
            shutil.rmtree(job_dir, ignore_errors=True)


def _run_in(job_dir: Path, recording: Recording, limits: Limits, slot) -> tuple[Execution, dict]:
    sealed = slot is not None
    _write_inputs(job_dir / "inputs", recording.inputs, private=not sealed)
    _write_extras(job_dir / "extras", recording.extras)
    (job_dir / "root").mkdir(mode=0o700)
    if sealed:
        fs = _filesystem(tuple(recording.allow))
        uid, gid, group = slot
        kernel_paths = {"inputs_dir": "/sealed/inputs", "outputs_dir": "/sealed/outputs"}
        launcher = {"sealed": {**fs, "uid": uid, "gid": gid, "home": HOME, "root_size_mb": limits.disk_mb,
                               "cgroup_procs": group.procs_files, "max_output_bytes": limits.file_size_mb << 20},
                    "sys_path": [fs["site"]], "interpreter": fs["interpreter"], "home": HOME,
                    "env": _environment(HOME, "/tmp")}
    else:
        work, outputs = job_dir / "work", job_dir / "outputs"
        work.mkdir(mode=0o700)
        outputs.mkdir(mode=0o700)
        _copy_tree(job_dir / "extras", work)
        kernel_paths = {"inputs_dir": str(job_dir / "inputs"), "outputs_dir": str(outputs)}
        package_parent = str(_INSIDE.parent.parent)
        numpy_parent = str(Path(importlib.util.find_spec("numpy").origin).parent.parent)
        launcher = {"sealed": None, "sys_path": [package_parent, numpy_parent],
                    "interpreter": os.path.realpath(sys.executable), "home": str(work),
                    "env": _environment(str(work), str(work)), "kernel_file": str(job_dir / "kernel.json")}
    kernel = {"mode": recording.mode, "cells": recording.cells, "parts": recording.parts,
              "helpers": recording.helpers, "calls": recording.calls, "allow": list(recording.allow),
              "output_chars": limits.output_kb * 1024, **kernel_paths}
    launcher["rlimits"] = _rlimits(limits, sealed)
    _write_private_json(job_dir / "kernel.json", kernel)
    _write_private_json(job_dir / "job.json", launcher)
    execution = _supervise(job_dir, limits, recording.cells, slot)
    collected = job_dir / ("collected" if sealed else "outputs")
    outputs = collect_outputs(collected, recording.parts, recording.inputs, owner=None if sealed else os.getuid(),
                              max_bytes=limits.file_size_mb << 20) if recording.mode == "record" else {}
    return execution, outputs


def _write_private_json(path: Path, data: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)


def _write_inputs(directory: Path, inputs: dict, *, private: bool) -> None:
    """One blob and its index, root-owned and read-only for the job (mounted read-only in a sealed job)."""
    directory.mkdir(mode=0o700 if private else 0o755)
    blob, index = harness.pack_inputs(inputs)
    mode = 0o600 if private else 0o644
    for name, data in ((harness.INPUTS_BLOB, blob), (harness.INPUTS_INDEX, json.dumps(index).encode())):
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), mode)           # explicit: the grader runs with umask 077
    os.chmod(directory, 0o700 if private else 0o755)


def _write_extras(directory: Path, files: dict) -> None:
    directory.mkdir(mode=0o700)
    for rel, data in files.items():
        target = directory / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _copy_tree(src: Path, dest: Path) -> None:
    for path in src.rglob("*"):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            shutil.copyfile(path, target)


def _rlimits(limits: Limits, sealed: bool) -> dict:
    rl = {
        "RLIMIT_AS": limits.memory_mb << 20,
        "RLIMIT_CPU": limits.cpu_limit,
        "RLIMIT_FSIZE": limits.file_size_mb << 20,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CORE": 0,
    }
    if sealed:
        rl["RLIMIT_NPROC"] = limits.nproc
    else:
        # Without a uid of its own the count includes every process of this user.
        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        want = _task_count(os.getuid()) + limits.nproc
        rl["RLIMIT_NPROC"] = want if hard == resource.RLIM_INFINITY else min(want, hard)
    return rl


# -- supervision -------------------------------------------------------------------
def _supervise(job_dir: Path, limits: Limits, cells, slot) -> Execution:
    log_path = job_dir / "kernel.log"
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    read_fd, write_fd = os.pipe()
    children_before = _children() if slot is None else set()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            [os.path.realpath(sys.executable), "-I", "-S", str(_INSIDE / "launch.py"), str(job_dir), str(write_fd)],
            stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, pass_fds=(write_fd,), cwd=job_dir,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True, close_fds=True)
    except OSError as exc:
        raise SandboxError(f"could not start the job: {exc}") from exc
    finally:
        os.close(write_fd)
        os.close(log_fd)
    ex = Execution(sealed=slot is not None)
    killed_for = None
    try:
        killed_for = _watch(proc, read_fd, limits, ex, start)
    finally:
        _end(proc, slot)
        os.close(read_fd)
        if slot is None:
            _cleanup_unsealed(children_before, session=proc.pid)
    ex.seconds = time.monotonic() - start
    ex.returncode = proc.returncode
    ex.log = _log_excerpt(log_path)
    if slot is not None:
        ex.limits_hit = slot[2].facts()
        slot[2].kill()
    if ex.sandbox_failure is not None:
        raise SandboxError(f"the sandbox could not be set up (no student code ran): {ex.sandbox_failure}")
    if cells and not ex.started:
        tail = " ".join(ex.log[-300:].split())
        raise SandboxError(f"the job ended before running any cell, so no student code ran "
                           f"(exit {proc.returncode}): {tail}")
    _classify(ex, killed_for, limits, cells)
    return ex


def _end(proc, slot) -> None:
    """Stop the job: a sealed launcher ends the job and copies the outputs out; anything left is killed."""
    if proc.poll() is None:
        if slot is not None:
            _signal(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(proc.pid)
    proc.wait()
    if slot is not None:
        slot[2].kill()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _watch(proc, read_fd, limits: Limits, ex: Execution, start: float) -> str | None:
    """Follow the progress lines until the kernel ends; return why it was stopped, if it was."""
    notebook_deadline = start + limits.notebook_timeout
    phase_started, current, interrupted_at = start, None, None
    buffer, received, eof = b"", 0, False
    while True:
        now = time.monotonic()
        if proc.poll() is not None:
            if not eof:
                buffer = _drain(read_fd, buffer, ex)
            return None
        if now >= notebook_deadline:
            return "notebook"
        if interrupted_at is not None and now >= interrupted_at + limits.interrupt_grace:
            return "cell"
        if interrupted_at is None and current is not None and now >= phase_started + limits.cell_timeout:
            _signal(proc.pid, signal.SIGINT)
            interrupted_at = now
            ex.interrupted.append(current)
        deadlines = [notebook_deadline]
        if interrupted_at is not None:
            deadlines.append(interrupted_at + limits.interrupt_grace)
        elif current is not None:
            deadlines.append(phase_started + limits.cell_timeout)
        wait = max(0.0, min(0.25, min(deadlines) - now))
        if eof or received > MAX_PROGRESS_BYTES:
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
            continue
        ready, _, _ = select.select([read_fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            eof = True
            continue
        received += len(chunk)
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        buffer = buffer[-256:]
        for line in lines:
            moved = _progress(line, ex)
            if moved is not None:
                current, phase_started, interrupted_at = moved, time.monotonic(), None


def _drain(read_fd, buffer: bytes, ex: Execution) -> bytes:
    """Read what is already in the pipe (forked children may keep it open: never block)."""
    for _ in range(64):
        ready, _, _ = select.select([read_fd], [], [], 0.05)
        if not ready:
            break
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            _progress(line, ex)
    return buffer


def _progress(line: bytes, ex: Execution):
    """Parse one progress line; return the cell index when the kernel moved on to a new phase."""
    words = line.decode("ascii", "replace").split()
    if words[:1] == ["sandbox-failed"] and ex.sandbox_failure is None and not ex.started:
        ex.sandbox_failure = line.decode("utf-8", "replace")[len("sandbox-failed "):][:300]
        return None
    if not words or len(words) > 3:
        return None
    kind = words[0]
    if kind in ("start", "record") and len(words) == 2 and words[1].isdigit():
        ex.started = True
        return int(words[1])
    if kind == "error" and len(words) == 3 and words[1].isdigit() and len(ex.cell_errors) < 1000:
        ex.cell_errors[int(words[1])] = words[2][:60]
    elif kind == "done" and len(words) == 1:
        ex.finished = True
    return None


def _classify(ex: Execution, killed_for, limits: Limits, cells) -> None:
    def where(i):
        if not isinstance(i, int) or i >= len(cells):
            return "the notebook"
        return cells[i]["label"]

    rc = ex.returncode
    memory = ex.limits_hit.get("oom_kills", 0) > 0
    if killed_for == "notebook":
        ex.status, ex.message = "timeout", (f"the notebook exceeded its {limits.notebook_timeout:g} s budget "
                                            "and was stopped")
    elif killed_for == "cell":
        ex.status, ex.message = "timeout", (f"{where(ex.interrupted[-1])} ran past {limits.cell_timeout:g} s, "
                                            "ignored the interrupt and was stopped")
    elif rc is not None and rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        ex.status, ex.message = "timeout", f"the notebook used up its {limits.cpu_limit} s of CPU time"
    elif not ex.finished:
        sig = -rc if rc is not None and rc < 0 else (rc - 128 if rc is not None and rc > 128 else None)
        how = (f"was killed by {signal.Signals(sig).name}" if sig in signal.Signals._value2member_map_
               else f"exited with code {rc}")
        ex.status = "crashed"
        ex.message = (f"the notebook's processes used more than their {limits.memory_mb} MiB of memory together "
                      "and were killed" if memory else
                      f"the notebook's process {how} before the end of the notebook")
    elif ex.interrupted:
        ex.status = "timeout"
        ex.message = "; ".join(f"{where(i)} ran past {limits.cell_timeout:g} s and was interrupted"
                               for i in ex.interrupted)
    else:
        ex.status = "ok"


def _log_excerpt(path: Path, head: int = 6000, tail: int = 6000) -> str:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if size <= head + tail:
                data = fh.read()
            else:
                data = fh.read(head) + b"\n[... log cut ...]\n"
                fh.seek(size - tail)
                data += fh.read(tail)
    except OSError:
        return ""
    return _ANSI.sub("", data.decode("utf-8", "replace"))


# -- slots, identities, process cleanup ----------------------------------------------------
_SUBREAPER_SET = False


def _become_subreaper() -> None:
    """Orphans of an unsealed kernel are re-parented to this process, so they can be found and reaped."""
    global _SUBREAPER_SET
    if _SUBREAPER_SET or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass
    _SUBREAPER_SET = True


@contextmanager
def _slot(limits: Limits, sealed: bool):
    """Sealed: a free slot — (uid, gid, JobGroup) used by no one else on this host; unsealed: None."""
    if not sealed:
        yield None
        return
    slot_dir = _slot_dir()
    while True:
        for n in range(limits.slots):
            fd = os.open(slot_dir / f"slot-{n}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            uid = limits.uid_base + n
            try:
                # a crashed grader's leftovers in this slot are killed first (the group's members)
                group = cgroups.JobGroup(f"slot-{n}", memory_bytes=limits.memory_mb << 20, pids=limits.nproc)
                try:
                    yield (uid, uid, group)
                finally:
                    group.kill()
                    group.remove()
            except (OSError, cgroups.CgroupError) as exc:
                raise SandboxError(f"could not prepare sandbox slot {n}: {exc}") from exc
            finally:
                os.close(fd)
            return
        time.sleep(0.05)


def _slot_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "autograder-slots"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
        raise SandboxError(f"{path} must be a root-owned 0700 directory (someone else created it?)")
    return path


def remove_stale_job_dirs(base: Path) -> None:
    """Job directories of workers that died (their pid is gone): they hold a student's cells and inputs."""
    try:
        entries = list(base.glob(f"{JOB_PREFIX}*"))
    except OSError:
        return
    for path in entries:
        pid = path.name[len(JOB_PREFIX):].partition("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(path, ignore_errors=True)


def _proc_status(pid: str) -> dict | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
    except OSError:
        return None
    return {k: v.strip() for k, v in fields.items()}


def _processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            status = _proc_status(entry)
            if status is not None:
                yield int(entry), status


def _task_count(uid: int) -> int:
    count = 0
    for _, status in _processes():
        if status.get("Uid", "").split()[:1] == [str(uid)]:
            count += int(status.get("Threads", "1") or 1)
    return count


def _children() -> set[int]:
    me = str(os.getpid())
    return {pid for pid, st in _processes() if st.get("PPid") == me}


def _live_pids_of_uid(uid: int) -> list[int]:
    out = []
    for pid, status in _processes():
        uids = status.get("Uid", "").split()
        if str(uid) in uids and not status.get("State", "").startswith("Z"):
            out.append(pid)
    return out


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_zombie_children() -> None:
    me = str(os.getpid())
    for pid, status in _processes():
        if status.get("PPid") == me and status.get("State", "").startswith("Z"):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return int(fields[3])          # after the command name: state, ppid, pgrp, session
    except (OSError, ValueError, IndexError):
        return None


def _cleanup_unsealed(children_before: set[int], *, session: int) -> None:
    # Same user as the grader: kill the orphans of the kernel's session re-parented to us (a
    # process that left the session escapes this: only a sealed job's namespace reaches everything).
    for _ in range(20):
        strays = [p for p in _children() - children_before if _session_of(p) == session]
        live = [p for p in strays if not (_proc_status(str(p)) or {}).get("State", "Z").startswith("Z")]
        for pid in live:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap_zombie_children()
        if not live:
            return
        time.sleep(0.01)


# -- reading what came back ------------------------------------------------------------
def collect_outputs(outputs_dir: Path, parts: dict, inputs: dict, *, owner: int | None, max_bytes: int) -> dict:
    """{part id: PartOutputs, or None when the part was never recorded} — every file checked first.

    ``owner``: the uid the files must belong to (unsealed jobs write them directly); None for the
    copies a sealed job's launcher made after checking them."""
    dir_fd = os.open(outputs_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        result = {}
        for part_id, part in parts.items():
            meta = _read_json(dir_fd, harness.part_meta_file(part_id), owner)
            if meta is None:
                result[part_id] = None
                continue
            out_part = PartOutputs(error=_text(meta.get("error")))
            for i in range(len(inputs[part_id])):
                cmeta = _read_json(dir_fd, harness.case_meta_file(part_id, i), owner)
                if cmeta is None:
                    break
                out = CaseOutput(error=_text(cmeta.get("error")),
                                 warnings=[_text(w) for w in (cmeta.get("warnings") or [])[:5] if _text(w)])
                if out.error is None:
                    for name in part["outputs"]:
                        if name == "_":
                            continue
                        arr, problem = read_npy(dir_fd, harness.output_file(part_id, i, name), owner, max_bytes)
                        if problem:
                            out.error = f"output {name}: {problem}"
                            break
                        out.outputs[name] = arr
                out_part.cases.append(out)
            result[part_id] = out_part
        return result
    finally:
        os.close(dir_fd)


def _open_checked(dir_fd: int, name: str, owner: int | None, max_bytes: int):
    """A file object for ``name`` in the output directory, or (None, why not)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = "not a regular file"
    elif owner is not None and (st.st_uid != owner or st.st_nlink != 1):
        problem = "not written by the notebook's process"
    elif st.st_size > max_bytes:
        problem = f"too large ({st.st_size} bytes)"
    if problem:
        os.close(fd)
        return None, problem
    return os.fdopen(fd, "rb"), None


def read_npy(dir_fd: int, name: str, owner: int | None, max_bytes: int):
    """(ndarray, None) or (None, problem): a numeric or string .npy checked before it is loaded."""
    fh, problem = _open_checked(dir_fd, name, owner, max_bytes)
    if fh is None:
        return None, problem
    with fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return None, "unknown .npy version"
            if dtype.hasobject or dtype.kind not in "biufU" or dtype.fields is not None:
                return None, f"dtype {dtype} is not a plain numeric or string dtype"
            if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > max_bytes:
                return None, "too large"
            fh.seek(0)
            arr = np.load(fh, allow_pickle=False)
        except Exception as exc:   # noqa: BLE001 - malformed file written by the student's process
            return None, f"malformed array file ({type(exc).__name__})"
    if type(arr) is not np.ndarray:
        return None, "not an array"
    return arr, None


def _read_json(dir_fd: int, name: str, owner: int | None):
    fh, _ = _open_checked(dir_fd, name, owner, MAX_JSON_BYTES)
    if fh is None:
        return None
    with fh:
        try:
            data = json.loads(fh.read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
    return data if isinstance(data, dict) else None


def _text(value, limit: int = harness.MAX_MESSAGE) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:limit]
