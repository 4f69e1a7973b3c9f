"""Grading throughput on the real chapters: ``python -m bench.grading [--per-chapter N] [--no-nbgrader] [--no-dask]``.

Every chapter's assignment gets N students cycling through its solution, its blank release and a
buggy submission (the solution with the first part replaced by a catalogued mistake): 9 × N
notebooks (63 by default). On those same submissions, in one run:

* ``grade`` end to end (process start, references, gradebook, every notebook, sealed jobs) with
  1 and 2 local workers, and on a real 2-worker Dask cluster with TLS;
* the same notebooks run *whole* — demonstration cells included — by our kernel (2 processes),
  which separates the gain from skipping the demonstrations from the rest;
* plain ``nbgrader autograde`` of the same submissions, chapter after chapter.

Reported: seconds per notebook (amortized), the ratios, and the projected time for 500 students ×
9 chapters with 2 local workers. Targets (issue 11): <= 0.5 s per notebook on 2 local workers,
>= 10x faster than plain nbgrader, the Dask run within 25% of the local one.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KINDS = ("solution", "blank", "buggy")


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


def _answer(cell_source: str) -> str:
    return "\n".join(line for line in cell_source.split("\n") if "### BEGIN SOLUTION" not in line
                     and "### END SOLUTION" not in line)


def _submissions(course, assignment: str) -> dict:
    """{kind: notebook JSON} made from the release, as a student would."""
    from autograder import notebooks
    from autograder.spec import load_spec

    source = notebooks.read_trusted(course.source_notebooks(assignment)[0])
    answers = {notebooks.grade_id(c): _answer(notebooks.source_text(c)) for c in source["cells"]
               if notebooks.is_solution_cell(c)}
    release = json.loads((course.release_dir / assignment / f"{assignment}.ipynb").read_text())
    solved = json.loads(json.dumps(release))
    for cell in solved["cells"]:
        gid = notebooks.grade_id(cell)
        if gid in answers:
            cell["source"] = answers[gid]
    part = load_spec(course, assignment).parts[0]
    name, mutant = next(iter(part.mutants.items()))
    code = inspect.getsource(mutant.fn)
    code = re.sub(rf"def {mutant.fn.__name__}\(", f"def {part.function}(", code, count=1)
    buggy = json.loads(json.dumps(solved))
    buggy["cells"].append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                           "id": "buggy", "source": f"# the mistake '{name}'\n{code}"})
    # the replacement must come right after the answer it replaces: move it before the part's test cell
    test_at = next(i for i, c in enumerate(buggy["cells"]) if notebooks.grade_id(c) == part.id)
    buggy["cells"].insert(test_at, buggy["cells"].pop())
    return {"solution": solved, "blank": release, "buggy": buggy}


def make_class(root: Path, per_chapter: int):
    from autograder.course import Course

    for sub in ("solutions", "exercises", "book"):
        shutil.copytree(REPO / sub, root / sub, ignore=shutil.ignore_patterns("__pycache__", "_build"))
    course = Course.open(root)
    count = 0
    for assignment in course.assignments():
        kinds = _submissions(course, assignment)
        for i in range(per_chapter):
            folder = course.submission_dir(f"s{i:02d}", assignment)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{assignment}.ipynb").write_text(json.dumps(kinds[KINDS[i % 3]]))
            count += 1
    return course, count


def _grade(course, *args) -> float:
    return _timed([sys.executable, "-m", "autograder", "--course", str(course.root), "grade", "--no-progress",
                   "--regrade", *args], stderr=subprocess.DEVNULL)


def _whole_notebook(path: str, assignment: str, root: str) -> float:
    """One submission run whole (public tests and demonstrations) by our kernel, unsealed."""
    from autograder import jobs, notebooks, sandbox
    from autograder.course import Course

    course = Course.open(root)
    source = jobs.instructor_view(notebooks.read_trusted(course.source_notebooks(assignment)[0])["cells"])
    raw = notebooks.read_submission(Path(path).read_bytes(), max_bytes=20 << 20)
    cells = [{"source": c.source, "kind": c.origin, "part": None, "label": f"cell {i}"}
             for i, c in enumerate(notebooks.restore(source, raw, set()).cells) if c.cell_type == "code"]
    start = time.perf_counter()
    sandbox.run(sandbox.Recording(cells=cells, mode="notebook"), course.limits, sealed=False)
    return time.perf_counter() - start


def _ours_whole_notebooks(course) -> float:
    paths = [(str(p), p.parent.name) for p in sorted(course.submitted_dir.glob("*/*/*.ipynb"))]
    start = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_whole_notebook, [p for p, _ in paths], [a for _, a in paths], [str(course.root)] * len(paths)))
    return time.perf_counter() - start


def _nbgrader(course, root: Path) -> float:
    """Plain nbgrader: generate_assignment into a gradebook (not timed), then autograde every chapter (timed)."""
    nb = root / "nbgrader"
    flags = [f"--CourseDirectory.root={nb}", f"--CourseDirectory.db_url=sqlite:///{nb / 'gradebook.db'}",
             "--log-level=ERROR"]
    total = 0.0
    for assignment in course.assignments():
        (nb / "source").mkdir(parents=True, exist_ok=True)
        shutil.copytree(course.source_dir / assignment, nb / "source" / assignment,
                        ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", *flags],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), cwd=course.root)
        for folder in course.submitted_dir.glob(f"*/{assignment}"):
            dest = nb / "submitted" / folder.parent.name / assignment
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / f"{assignment}.ipynb", dest / f"{assignment}.ipynb")
        total += _timed([sys.executable, "-m", "nbgrader", "autograde", assignment, "--force", *flags],
                        stderr=subprocess.DEVNULL, cwd=course.root)
    return total


def _dask(course, root: Path) -> float:
    sys.path.insert(0, str(REPO))
    from tools.tls_cluster import Cluster

    tls = root / "tls"
    subprocess.run([sys.executable, "-m", "autograder", "--course", str(course.root), "cluster", "certs", "--out",
                    str(tls)], check=True, stdout=subprocess.DEVNULL, env=_env())
    with open(course.root / "autograder.toml", "a") as fh:
        fh.write(f"\n[cluster]\ntls = {str(tls)!r}\n")
    cluster = Cluster(tls, root)
    try:
        cluster.add_worker()
        cluster.add_worker()
        return _grade(course, "--scheduler", cluster.address)
    finally:
        cluster.close()


def run(*, per_chapter: int = 7, nbgrader: bool = True, dask: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        root = Path(tmp)
        course, n = make_class(root / "course", per_chapter)
        subprocess.run([sys.executable, "-m", "autograder", "--course", str(course.root), "references", "--device",
                        "cpu"], check=True, stdout=subprocess.DEVNULL, env=_env())
        figures = {"notebooks": n, "chapters": len(course.assignments()), "cpus": os.cpu_count(),
                   "load_before": os.getloadavg()[0]}
        figures["ours_1w_s"] = _grade(course, "--workers", "1")
        figures["ours_2w_s"] = _grade(course, "--workers", "2")
        if dask:
            figures["dask_2w_s"] = _dask(course, root)
        figures["ours_whole_2w_s"] = _ours_whole_notebooks(course)
        if nbgrader:
            figures["nbgrader_s"] = _nbgrader(course, root)
        figures["load_after"] = os.getloadavg()[0]
    for key in [k for k in figures if k.endswith("_s")]:
        figures[key[:-2] + "_per_nb_s"] = figures[key] / n
    figures["projected_500x9_2w_min"] = figures["ours_2w_per_nb_s"] * 500 * 9 / 60
    if dask:
        figures["dask_over_local"] = figures["dask_2w_s"] / figures["ours_2w_s"]
    if nbgrader:
        figures["nbgrader_over_ours_2w"] = figures["nbgrader_s"] / figures["ours_2w_s"]
        figures["nbgrader_over_ours_whole"] = figures["nbgrader_s"] / figures["ours_whole_2w_s"]
    _print(figures)
    return figures


def _print(f: dict) -> None:
    print(f"grading {f['notebooks']} real chapter notebooks ({f['chapters']} chapters × solution, blank, buggy), "
          f"{f['cpus']} CPUs, load average {f['load_before']:.1f} -> {f['load_after']:.1f}")
    print(f"{'':52s}{'total s':>9s}{'s / notebook':>14s}")
    rows = [("grade, 1 local worker (sealed)", "ours_1w"), ("grade, 2 local workers (sealed)", "ours_2w"),
            ("grade, Dask cluster of 2 workers, TLS (sealed)", "dask_2w"),
            ("our kernel, whole notebooks incl. demos, 2 processes", "ours_whole_2w"),
            ("plain nbgrader autograde", "nbgrader")]
    for label, key in rows:
        if key + "_s" in f:
            print(f"{label:52s}{f[key + '_s']:9.1f}{f[key + '_per_nb_s']:14.2f}")
    print(f"2 workers over 1: {f['ours_1w_s'] / f['ours_2w_s']:.2f}x")
    if "dask_over_local" in f:
        print(f"Dask over local (2 workers each): {f['dask_over_local']:.2f} (target <= 1.25)")
    if "nbgrader_over_ours_2w" in f:
        print(f"plain nbgrader takes {f['nbgrader_over_ours_2w']:.1f}x the time of grade on 2 workers (target >= 10x), "
              f"{f['nbgrader_over_ours_whole']:.1f}x the time of our kernel running whole notebooks")
    print(f"projected for 500 students x 9 chapters on this machine, 2 workers: {f['projected_500x9_2w_min']:.0f} min")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-chapter", type=int, default=7, help="students per chapter (default 7: 63 notebooks)")
    parser.add_argument("--no-nbgrader", action="store_true", help="skip the plain nbgrader comparison")
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask cluster")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.per_chapter < 3:
        parser.error("--per-chapter must be at least 3 (solution, blank, buggy)")
    figures = run(per_chapter=args.per_chapter, nbgrader=not args.no_nbgrader, dask=not args.no_dask)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
