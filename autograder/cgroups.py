"""One memory and pids budget for all the processes of a job, and a way to kill them all: control groups.

A job's ``init`` is placed in the job's group by the launcher before any student code runs, and
everything it forks stays there: the memory limit counts every process together (and the job's
tmpfs pages, which are charged to their writer), the pids limit caps forks and threads, and
killing the group's members reaches every one of them.

cgroup v1 (``/sys/fs/cgroup/memory`` and ``/sys/fs/cgroup/pids`` hierarchies, as on these
machines): the job's groups nest under this process's own groups, so the grader's own limits still
apply. cgroup v2 (a unified ``/sys/fs/cgroup``): under ``/sys/fs/cgroup/autograder.jobs``, because
v2 forbids processes in a group whose children have controllers. One group per sandbox slot
(``slot-N``), emptied and recreated when the slot is taken, so a worker that died cannot leave
anything running for long.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids")
V2_PARENT = "autograder.jobs"


class CgroupError(RuntimeError):
    pass


def _own_path(controller: str) -> str:
    """This process's group in a v1 hierarchy ('/' for the root)."""
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    raise CgroupError(f"this process is in no {controller} cgroup")


def version() -> int | None:
    """1 or 2 where the memory and pids controllers can be used here, else None."""
    if all((ROOT / c / "cgroup.procs").is_file() for c in V1_CONTROLLERS):
        return 1
    controllers = ROOT / "cgroup.controllers"
    if controllers.is_file():
        have = controllers.read_text().split()
        if all(c in have for c in V1_CONTROLLERS):
            return 2
    return None


def unavailable_reason() -> str | None:
    """Why job cgroups cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "cgroups need root"
    v = version()
    if v is None:
        return "no memory and pids cgroup controllers are mounted under /sys/fs/cgroup"
    try:
        probe = JobGroup("probe", memory_bytes=64 << 20, pids=8)
        probe.remove()
    except OSError as exc:
        return f"cannot create job cgroups ({exc})"
    return None


class JobGroup:
    """The control groups of one sandbox slot: created empty, limits written, removed after the job."""

    def __init__(self, name: str, *, memory_bytes: int, pids: int):
        self.name = name
        self.version = version()
        if self.version is None:
            raise CgroupError("no memory and pids cgroup controllers")
        if self.version == 1:
            self.dirs = [ROOT / c / _own_path(c).lstrip("/") / "autograder" / name for c in V1_CONTROLLERS]
        else:
            parent = ROOT / V2_PARENT
            if not parent.is_dir():
                parent.mkdir(exist_ok=True)
                _write(ROOT / "cgroup.subtree_control", "+memory +pids")
                _write(parent / "cgroup.subtree_control", "+memory +pids")
            self.dirs = [parent / name]
        self.kill()
        self.remove()
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
        if self.version == 1:
            memory, pids_dir = self.dirs
            _write(memory / "memory.limit_in_bytes", str(memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():
                _write(swap, str(memory_bytes))
            _write(pids_dir / "pids.max", str(pids))
        else:
            (d,) = self.dirs
            _write(d / "memory.max", str(memory_bytes))
            _write(d / "memory.swap.max", "0")
            _write(d / "pids.max", str(pids))

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def members(self) -> set[int]:
        pids = set()
        for d in self.dirs:
            try:
                pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return pids

    def kill(self) -> None:
        """SIGKILL every process in the groups, until they are empty."""
        for attempt in range(200):
            members = self.members()
            if not members:
                return
            if self.version == 2 and (self.dirs[0] / "cgroup.kill").exists():
                _write(self.dirs[0] / "cgroup.kill", "1")
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005 * min(attempt + 1, 20))
        raise CgroupError(f"the processes of job group {self.name} could not be stopped")

    def facts(self) -> dict:
        """What the limits did: {'memory': times the memory limit was hit, 'oom_kills', 'pids': forks refused}."""
        out = {"memory": 0, "oom_kills": 0, "pids": 0}
        if self.version == 1:
            memory, pids_dir = self.dirs
            out["memory"] = _read_int(memory / "memory.failcnt")
            out["oom_kills"] = _keyed(memory / "memory.oom_control").get("oom_kill", 0)
            out["pids"] = _keyed(pids_dir / "pids.events").get("max", 0)
        else:
            (d,) = self.dirs
            events = _keyed(d / "memory.events")
            out["memory"], out["oom_kills"] = events.get("max", 0), events.get("oom_kill", 0)
            out["pids"] = _keyed(d / "pids.events").get("max", 0)
        return out

    def remove(self) -> None:
        for d in self.dirs:
            for attempt in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)          # members still exiting


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _keyed(path: Path) -> dict:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            pass
    return out
