"""Confining the student's process: run by the kernel as root, before any student code (stdlib only).

Order: (1) reveal the interpreter if it lives under a directory other users cannot enter (e.g. a
pyenv Python under ``/root``, mode 0700): in a private mount namespace, a small tmpfs is mounted over
that directory and only the interpreter's own directories are bind-mounted back into it, at the
same paths — the rest of ``/root`` stays invisible; (2) drop to the sandbox uid/gid with no
supplementary groups (real, effective and saved ids, so it cannot be undone); (3) set
``no_new_privs`` so setuid programs cannot give privileges back; (4) set the resource limits
with hard = soft.
"""
from __future__ import annotations

import ctypes
import os
import resource
import stat
import sys

_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_MOVE, _MS_REC, _MS_PRIVATE = 4096, 8192, 16384, 1 << 18
_PR_SET_NO_NEW_PRIVS = 38


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def blocked_paths(paths) -> list[list]:
    """[[blocked ancestor, [needed paths under it]], ...] for paths others cannot reach."""
    groups: dict[str, list[str]] = {}
    for path in sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)}):
        parts = path.split(os.sep)
        for depth in range(2, len(parts)):
            ancestor = os.sep.join(parts[:depth]) or os.sep
            try:
                mode = os.stat(ancestor).st_mode
            except OSError:
                break
            if not mode & stat.S_IXOTH:
                groups.setdefault(ancestor, [])
                if not any(path.startswith(p + os.sep) or path == p for p in groups[ancestor]):
                    groups[ancestor].append(path)
                break
    # drop needed paths nested in another blocked group's needed path
    return [[a, ps] for a, ps in sorted(groups.items())
            if not any(a.startswith(b + os.sep) for b in groups if b != a)]


def interpreter_paths() -> list[str]:
    """Directories the kernel's Python needs: its prefixes and everything on sys.path."""
    return [sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable)),
            *[p for p in sys.path if p and os.path.isdir(p)]]


def reveal(groups: list, staging: str) -> None:
    """Make each needed path reachable at its own path inside a new private mount namespace."""
    if not groups:
        return
    libc = _libc()
    old_umask = os.umask(0o022)       # the kernel starts with 077; the revealed dirs must be traversable
    try:
        _reveal(libc, groups, staging)
    finally:
        os.umask(old_umask)


def _reveal(libc, groups: list, staging: str) -> None:
    _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    n = 0
    for ancestor, needed in groups:
        staged = []
        for path in needed:
            stage = os.path.join(staging, str(n))
            n += 1
            os.makedirs(stage, mode=0o700)
            _check(libc.mount(path.encode(), stage.encode(), None, _MS_BIND | _MS_REC, None), f"bind {path}")
            staged.append((stage, path))
        _check(libc.mount(b"tmpfs", ancestor.encode(), b"tmpfs", 0, b"mode=0711,size=64k"), f"tmpfs on {ancestor}")
        for stage, path in staged:
            os.makedirs(path, mode=0o711, exist_ok=True)
            _check(libc.mount(stage.encode(), path.encode(), None, _MS_MOVE, None), f"move to {path}")


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise OSError("could not drop privileges")


def no_new_privileges() -> None:
    try:
        _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    except AttributeError:
        pass


def apply_rlimits(rlimits: dict) -> None:
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def enter(box: dict | None, rlimits: dict) -> None:
    """Everything above, in order (``box`` None: not root, only the limits apply)."""
    if box is not None:
        reveal(box["reveal"], box["staging"])
        drop_privileges(box["uid"], box["gid"])
    no_new_privileges()
    apply_rlimits(rlimits)
