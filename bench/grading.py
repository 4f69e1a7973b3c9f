"""Grading throughput: ``python -m autograder grade`` with 1 and 2 workers against plain ``nbgrader autograde``.

``python -m bench.grading [--students N] [--no-nbgrader] [--json PATH]``

Everything runs on the same submissions in the same run: N copies of the fixture assignment
(tests/fixtures/course), cycling through a full solution, a partial one and the blank release.
Reported:

* end to end: wall time of the whole command (process start, spec/torch import, gradebook,
  every notebook) divided by N — the amortized seconds per graded notebook;
* jobs only: the time to run the N notebook jobs (``autograder.batch.run_jobs``) after the
  references are loaded, with 1 and 2 local workers — the part that parallelizes;
* speed-ups of 2 workers over 1, and of the autograder over nbgrader.

Each autograder figure is the median of ``--repeats`` interleaved runs (1 worker, 2 workers,
1 worker, ...), so both configurations see the same machine load; nbgrader runs once (slow).

Targets: <= 2 s per notebook amortized, >= 1.7x with 2 workers. On a shared machine the
figures move with the load: run it a few times and report what you see.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fixtures"))


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def _timed(cmd, **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=_env(), **kwargs)
    return time.perf_counter() - start


def _make_class(root: Path, students: int):
    import agtools

    course = agtools.make_course(root)
    kinds = [agtools.filled(), agtools.filled(agtools.WRONG), agtools.blank()]
    names = []
    for i in range(students):
        name = f"s{i:03d}"
        agtools.submit(course, name, kinds[i % len(kinds)])
        names.append(name)
    return course, names


def _ours_end_to_end(course, workers: int) -> float:
    return _timed([sys.executable, "-m", "autograder", "--course", str(course.root), "grade",
                   "--workers", str(workers), "--no-progress"])


def _ours_jobs_only(course, workers: int) -> float:
    from autograder import batch, references
    from autograder.spec import load_spec

    spec = load_spec(course, "fixture_affine")
    data, _ = references.for_grading(course, spec)
    jobs = batch.build_jobs(course, spec, data, course.students())
    start = time.perf_counter()
    for _, outcome in batch.run_jobs(jobs, workers=workers):
        if isinstance(outcome, BaseException):
            raise outcome
    return time.perf_counter() - start


def _nbgrader(course, names, root: Path) -> float:
    """Plain nbgrader: generate_assignment into a gradebook (not timed), then autograde (timed)."""
    nb = root / "nbgrader"
    (nb / "source").mkdir(parents=True)
    shutil.copytree(course.source_dir / "fixture_affine", nb / "source" / "fixture_affine",
                    ignore=shutil.ignore_patterns("grading.py", "__pycache__"))
    flags = [f"--CourseDirectory.root={nb}", f"--CourseDirectory.db_url=sqlite:///{nb / 'gradebook.db'}",
             "--log-level=ERROR"]
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "fixture_affine", "--force", *flags],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    for name in names:
        dest = nb / "submitted" / name / "fixture_affine"
        dest.mkdir(parents=True)
        shutil.copy(course.submission_dir(name, "fixture_affine") / "affine.ipynb", dest / "affine.ipynb")
    return _timed([sys.executable, "-m", "nbgrader", "autograde", "fixture_affine", "--force", *flags],
                  stderr=subprocess.DEVNULL)


def run(*, students: int = 20, repeats: int = 3, nbgrader: bool = True) -> dict:
    from autograder.cli import main as autograder_main

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        root = Path(tmp)
        course, names = _make_class(root / "course", students)
        autograder_main(["--course", str(course.root), "references", "--device", "cpu"])
        _ours_end_to_end(course, 2)                      # warm caches; results are overwritten below
        load_before = os.getloadavg()[0]
        samples: dict[str, list] = {}
        for _ in range(repeats):                         # interleaved: 1 and 2 workers see the same load
            for workers in (1, 2):
                samples.setdefault(f"ours_{workers}w_total_s", []).append(_ours_end_to_end(course, workers))
                samples.setdefault(f"ours_{workers}w_jobs_s", []).append(_ours_jobs_only(course, workers))
        figures = {"students": students, "cpus": os.cpu_count(), "repeats": repeats,
                   "load_average": (load_before + os.getloadavg()[0]) / 2}
        figures.update({k: statistics.median(v) for k, v in samples.items()})
        figures["samples"] = samples
        if nbgrader:
            figures["nbgrader_total_s"] = _nbgrader(course, names, root)
    n = students
    for key in [k for k in figures if k.endswith("_s") and not isinstance(figures[k], list)]:
        figures[key.removesuffix("_s") + "_per_nb_s"] = figures[key] / n
    figures["speedup_2w_total"] = figures["ours_1w_total_s"] / figures["ours_2w_total_s"]
    figures["speedup_2w_jobs"] = figures["ours_1w_jobs_s"] / figures["ours_2w_jobs_s"]
    if nbgrader:
        figures["nbgrader_over_ours_1w"] = figures["nbgrader_total_s"] / figures["ours_1w_total_s"]
        figures["nbgrader_over_ours_2w"] = figures["nbgrader_total_s"] / figures["ours_2w_total_s"]
    _print(figures)
    return figures


def _print(f: dict) -> None:
    n = f["students"]
    print(f"grading {n} notebooks (fixture_affine), {f['cpus']} CPUs, load average {f['load_average']:.1f}, "
          f"median of {f['repeats']} interleaved runs (nbgrader: one run)")
    print(f"{'':34s}{'total s':>10s}{'s / notebook':>15s}")
    rows = [("autograder, 1 worker (end to end)", "ours_1w_total"), ("autograder, 2 workers (end to end)", "ours_2w_total"),
            ("autograder, 1 worker (jobs only)", "ours_1w_jobs"), ("autograder, 2 workers (jobs only)", "ours_2w_jobs")]
    if "nbgrader_total_s" in f:
        rows.append(("plain nbgrader autograde", "nbgrader_total"))
    for label, key in rows:
        print(f"{label:34s}{f[key + '_s']:10.2f}{f[key + '_per_nb_s']:15.2f}")
    print(f"speed-up with 2 workers: {f['speedup_2w_total']:.2f}x end to end, {f['speedup_2w_jobs']:.2f}x jobs only "
          f"(target >= 1.7x)")
    if "nbgrader_total_s" in f:
        print(f"nbgrader takes {f['nbgrader_over_ours_1w']:.2f}x the autograder's time with 1 worker, "
              f"{f['nbgrader_over_ours_2w']:.2f}x with 2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=20, help="submissions to grade (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per configuration (median)")
    parser.add_argument("--no-nbgrader", action="store_true", help="skip the plain nbgrader comparison")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.students < 2:
        parser.error("--students must be at least 2")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    figures = run(students=args.students, repeats=args.repeats, nbgrader=not args.no_nbgrader)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
