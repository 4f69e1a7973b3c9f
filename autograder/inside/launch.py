"""Start one job's kernel in a sealed box: ``python -I -S launch.py JOB_DIR PROGRESS_FD`` (stdlib only).

Run by :mod:`autograder.sandbox` (the supervisor, on the worker host). As root it builds, before
any student code exists in any process:

* new mount, PID, network, IPC and UTS namespaces: the job sees no other process, has no network
  interface but a loopback that is down, and shares no System V IPC or abstract socket with anyone;
* a new root filesystem on a size-capped tmpfs (the job's whole disk: ``/tmp``, ``/var/tmp``,
  ``/dev/shm``, the home directory and the outputs live on it and vanish with the job) holding,
  read-only, only what an answer may use: the interpreter and its standard library (without
  site-packages), the shared libraries, the allowed packages (numpy), this subpackage, and the
  job's inputs; ``pivot_root`` then detaches the host's filesystem entirely;
* an ``init`` (PID 1 of the namespace, in the job's memory and pids cgroups) and under it the kernel,
  which drops for good to the job's uid/gid (no groups, ``no_new_privs``, hard rlimits) and is
  exec'd afresh, so nothing of this launcher is in its memory.

When the kernel ends (or the supervisor asks: SIGINT interrupts the running cell, SIGTERM ends the
job), every process of the namespace dies with its init, and this launcher copies the outputs out
of the job's tmpfs — regular files owned by the job's uid, single-linked, within the size cap,
with the names the harness uses — into ``JOB_DIR/collected``, which the job never saw.

Without root nothing can be sealed: the kernel runs as the caller with the rlimits only, and the
kernel's import guard refuses the modules an answer may not use (the same rule, by behaviour).
"""
import ctypes
import json
import os
import re
import resource
import signal
import stat
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SANDBOX_ROOT = "/sealed"
OUTPUT_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}\.(npy|json)$")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None):
    _check(_libc.mount(None if source is None else source.encode(), target.encode(),
                       None if fstype is None else fstype.encode(), flags,
                       None if data is None else data.encode()), f"mount {source} on {target}")


def die_with_parent():
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


# -- the new root ------------------------------------------------------------------------------
def _inside(root, path):
    return os.path.join(root, path.lstrip("/"))


def _makedirs(path, mode=0o755):
    os.makedirs(path, mode=mode, exist_ok=True)
    os.chmod(path, mode)


def build_root(root, box, job_dir):
    """The job's filesystem at ``root``: a tmpfs with read-only binds of exactly what is allowed."""
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={box['root_size_mb']}m,mode=0755")
    for host, target in box["binds"]:
        where = _inside(root, target)
        if os.path.isdir(host):
            _makedirs(where)
        else:
            _makedirs(os.path.dirname(where))
            open(where, "a").close()
        _mount(host, where, None, MS_BIND | MS_REC)
        _mount(None, where, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for target in box["masks"]:
        where = _inside(root, target)
        if os.path.isdir(where):
            _mount("tmpfs", where, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0555")
    for link, target in box["symlinks"]:
        where = _inside(root, link)
        _makedirs(os.path.dirname(where))
        os.symlink(target, where)
    _makedirs(_inside(root, "/dev"))
    for dev in ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"):
        where = _inside(root, dev)
        open(where, "a").close()
        _mount(dev, where, None, MS_BIND)
        _mount(None, where, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC)
    uid, gid = box["uid"], box["gid"]
    for path in ("/tmp", "/var/tmp", "/dev/shm"):
        _makedirs(_inside(root, path), 0o1777)
    _makedirs(_inside(root, box["home"]), 0o700)
    os.chown(_inside(root, box["home"]), uid, gid)
    # the outputs on a tmpfs of their own: a notebook that fills its disk cannot keep its answers from coming back
    outputs = _inside(root, f"{SANDBOX_ROOT}/outputs")
    _makedirs(outputs, 0o700)
    _mount("tmpfs", outputs, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           f"size={box['max_output_bytes'] + (1 << 20)},mode=0700,uid={uid},gid={gid}")
    inputs = _inside(root, f"{SANDBOX_ROOT}/inputs")
    _makedirs(inputs)
    _mount(os.path.join(job_dir, "inputs"), inputs, None, MS_BIND)
    _mount(None, inputs, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # the kernel's instructions: its cells and parts (its own code and the public spec, nothing secret)
    with open(os.path.join(job_dir, "kernel.json"), "rb") as src, \
            open(_inside(root, f"{SANDBOX_ROOT}/job.json"), "wb") as dst:
        dst.write(src.read())
    os.chmod(_inside(root, f"{SANDBOX_ROOT}/job.json"), 0o444)
    home = _inside(root, box["home"])
    extras = os.path.join(job_dir, "extras")
    for folder, dirs, files in os.walk(extras):
        rel = os.path.relpath(folder, extras)
        for name in dirs:
            path = os.path.normpath(os.path.join(home, rel, name))
            _makedirs(path, 0o700)
            os.chown(path, uid, gid)
        for name in files:
            with open(os.path.join(folder, name), "rb") as src:
                data = src.read()
            path = os.path.normpath(os.path.join(home, rel, name))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as dst:
                dst.write(data)
            os.chown(path, uid, gid)


def enter_root(root):
    """Make ``root`` this process's ``/`` and detach the host's filesystem from its mount namespace."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")     # the launcher keeps its own view
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    os.chdir(root)
    os.mkdir(".oldroot", 0o700)
    _check(_libc.syscall(155, b".", b".oldroot"), "pivot_root")    # SYS_pivot_root on x86_64
    os.chdir("/")
    _check(_libc.umount2(b"/.oldroot", MNT_DETACH), "umount the host's root")
    os.rmdir("/.oldroot")


# -- the kernel's process ------------------------------------------------------------------------
def drop_privileges(uid, gid):
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSError("could not drop privileges")


def no_new_privileges():
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def apply_rlimits(rlimits):
    for name, value in rlimits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def exec_kernel(job, progress_fd, job_file):
    """Replace this process by a fresh interpreter running :mod:`autograder.inside.kernel`."""
    boot = ("import sys; sys.path[:0] = %r; from autograder.inside import kernel; kernel.main(sys.argv[1:])"
            % (job["sys_path"],))
    os.umask(0o077)
    os.chdir(job["home"])
    os.execve(job["interpreter"], [job["interpreter"], "-I", "-S", "-c", boot, job_file, str(progress_fd)],
              job["env"])


def run_sealed(job_dir, job, progress_fd):
    box = job["sealed"]
    root = os.path.join(job_dir, "root")
    os.umask(0o022)           # the grader runs with 077; the job's skeleton must be traversable
    go_read, go_write = os.pipe()
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS),
           "unshare(mount, pid, net, ipc, uts)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    build_root(root, box, job_dir)
    init = os.fork()
    if init == 0:
        try:
            os.close(go_write)
            die_with_parent()
            if os.read(go_read, 2) != b"go":
                os._exit(97)
            os.close(go_read)
            _check(_libc.sethostname(b"sandbox", 7), "sethostname")
            enter_root(root)
            _init(job, box, progress_fd)
        except BaseException as exc:   # noqa: BLE001 - reported as a sandbox failure: no student code ran
            _report(progress_fd, "sandbox-failed " + " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
            os._exit(97)
    os.close(go_read)
    for procs in box["cgroup_procs"]:          # init and everything under it: one memory and pids budget
        with open(procs, "w") as fh:
            fh.write(str(init))
    os.write(go_write, b"go")
    os.close(go_write)
    signal.signal(signal.SIGINT, lambda *_: _signal(init, signal.SIGINT))
    signal.signal(signal.SIGTERM, lambda *_: _signal(init, signal.SIGKILL))
    status = _wait(init)
    collect(_inside(root, f"{SANDBOX_ROOT}/outputs"), os.path.join(job_dir, "collected"), box["uid"],
            box["max_output_bytes"])
    return status


def _init(job, box, progress_fd):
    """PID 1 of the job: start the kernel, reap every orphan, end with the kernel (taking all with it)."""
    kernel = os.fork()
    if kernel == 0:
        os.setsid()
        drop_privileges(box["uid"], box["gid"])
        no_new_privileges()
        apply_rlimits(job["rlimits"])
        exec_kernel(job, progress_fd, f"{SANDBOX_ROOT}/job.json")
    signal.signal(signal.SIGINT, lambda *_: _signal(kernel, signal.SIGINT))
    status = _wait(kernel, reap_all=True)
    os._exit(_exit_code(status))


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait(pid, *, reap_all=False):
    while True:
        try:
            got, status = os.waitpid(-1 if reap_all else pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0
        if got == pid:
            return status


def _exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def _report(fd, line):
    try:
        os.write(fd, (line + "\n").encode())
    except OSError:
        pass


# -- bringing outputs out ------------------------------------------------------------------------
def collect(outputs, dest, uid, max_bytes):
    """Copy the kernel's output files to ``dest``: plain files of the job's uid with harness names only."""
    os.makedirs(dest, mode=0o700, exist_ok=True)
    try:
        dir_fd = os.open(outputs, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    total = 0
    try:
        for name in sorted(os.listdir(dir_fd))[:20000]:
            if not OUTPUT_NAME.match(name):
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as src:
                st = os.fstat(src.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_uid != uid or st.st_nlink != 1 \
                        or total + st.st_size > max_bytes:
                    continue
                data = src.read(st.st_size + 1)[:st.st_size]
            total += len(data)
            out = os.open(os.path.join(dest, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(out, "wb") as dst:
                dst.write(data)
    finally:
        os.close(dir_fd)


def run_unsealed(job, progress_fd):
    """No root: the caller's own user, hard rlimits, and the kernel's import guard."""
    try:
        no_new_privileges()
    except OSError:
        pass
    apply_rlimits(job["rlimits"])
    exec_kernel(job, progress_fd, job["kernel_file"])


def main(argv):
    job_dir, progress_fd = argv[0], int(argv[1])
    with open(os.path.join(job_dir, "job.json")) as fh:
        job = json.load(fh)
    try:
        die_with_parent()
        if job["sealed"] is None:
            run_unsealed(job, progress_fd)
        status = run_sealed(job_dir, job, progress_fd)
    except BaseException as exc:   # noqa: BLE001 - a failure to build the box: no student code ran
        _report(progress_fd, "sandbox-failed " + " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        os._exit(97)
    os._exit(_exit_code(status))


if __name__ == "__main__":
    main(sys.argv[1:])
