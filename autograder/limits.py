"""Resource limits of one student's notebook run (all configurable in autograder.toml's [limits])."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Budgets and caps applied to each student's process.

    Times are wall-clock seconds measured by the grader; the memory, CPU, process and
    file-size caps are ``setrlimit`` hard limits set before any student code runs.
    """

    cell_timeout: float = 60.0         # a cell (or one part's recording) longer than this is interrupted
    notebook_timeout: float = 300.0    # the whole notebook; past it the process group is killed
    interrupt_grace: float = 3.0       # after SIGINT, seconds to move on before SIGKILL
    memory_mb: int = 4096              # RLIMIT_AS of each process, and the job's cgroup (all its processes)
    cpu_seconds: int = 0               # RLIMIT_CPU; 0 = notebook_timeout + 10
    nproc: int = 64                    # RLIMIT_NPROC and the job's pids cgroup (processes + threads)
    file_size_mb: int = 64             # RLIMIT_FSIZE (also caps each output file and the log)
    open_files: int = 256              # RLIMIT_NOFILE
    output_kb: int = 1024              # stdout/stderr kept per notebook (the rest is dropped)
    max_notebook_mb: int = 20          # larger submissions are 'unreadable'
    disk_mb: int = 256                 # the job's tmpfs: its /tmp, /var/tmp, /dev/shm, home and outputs
    analysis_seconds: float = 20.0     # the grader's analysis of one notebook's code (else: held)
    job_dir: str = ""                  # where workers make job directories (default: the temporary directory)
    uid_base: int = 65200              # as root, kernels run as uid/gid uid_base + slot (no login, no files)
    slots: int = 64                    # concurrent sandboxes per machine

    def __post_init__(self):
        for name in ("cell_timeout", "notebook_timeout", "interrupt_grace", "analysis_seconds"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"limits.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("memory_mb", "nproc", "file_size_mb", "open_files", "output_kb", "max_notebook_mb", "slots",
                     "disk_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"limits.{name} must be a positive int, got {value!r}")

    @property
    def cpu_limit(self) -> int:
        return self.cpu_seconds or int(self.notebook_timeout) + 10
