"""What a lost point teaches: ``python -m bench.feedback [--seed S]``.

For every assignment of the repository, graded in the grader's own way (outputs from the harness,
references from torch, the catalogue's outputs for matching):

* **catalogue**: each catalogued mistake graded as a submission — is it named by its own
  description? And graded as if it were *not* catalogued — is it mislabelled (named as another
  mistake)? Targets: all named, none mislabelled. (A floor: the catalogue graded against itself.)
* **new bugs**: the bugs written after the catalogue, in each chapter's test module
  (``UNCATALOGUED`` in ``tests/test_assignment_chNN.py``) — named, honestly unknown, or wrongly named.
  Wrongly named must be 0.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(seed: int = 0x5EED) -> list[dict]:
    sys.path.insert(0, str(REPO / "tests"))
    import assignment_support as support

    from autograder import compare, pipeline, references
    from autograder.course import Course
    from autograder.spec import load_spec

    course = Course.open(REPO)
    rows = []
    for assignment in course.assignments():
        spec = load_spec(course, assignment)
        cases = {pid: d.cases for pid, d in references.compute(spec, seed, "cpu").items()}
        solution = support.answer_namespace(support.notebook_paths(assignment)[0])
        plans = {p.id: p for p in spec.plans()}
        named = mislabelled = total = 0
        for part in spec.parts:
            for name, mutant in part.mutants.items():
                total += 1
                namespace = {**solution, part.function: mutant.fn}
                outs = pipeline.in_process_outputs(plans[part.id], namespace, [c.inputs for c in cases[part.id]],
                                                   spec.helpers)
                if outs.error is not None:
                    continue
                full = pipeline.catalogue(part)
                v = compare.judge_part(plans[part.id], cases[part.id], outs.cases, catalogue=full)
                named += f"mutant:{name}" in v.diagnoses
                without = {k: m for k, m in full.items() if k != name}
                v = compare.judge_part(plans[part.id], cases[part.id], outs.cases, catalogue=without)
                mislabelled += any(d.startswith("mutant:") for d in v.diagnoses)
        outcomes = {"bugs named": 0, "bugs unknown": 0, "bugs wrongly named": 0}
        try:
            module = importlib.import_module(f"test_assignment_{assignment[:4]}")
            bugs = getattr(module, "UNCATALOGUED", [])
        except ImportError:
            bugs = []
        hidden = {seed: cases}
        for bug in bugs:
            outcomes["bugs " + support.outcome(support.feedback_for(spec, hidden, solution, bug), bug)] += 1
        rows.append({"assignment": assignment, "mistakes": total, "named": named, "mislabelled": mislabelled,
                     "new bugs": len(bugs), **outcomes})
    _print(rows)
    return rows


def _print(rows):
    print(f"{'assignment':32s}{'mistakes':>9s}{'named':>7s}{'mislabelled':>12s}{'new bugs':>9s}{'named':>7s}"
          f"{'unknown':>8s}{'wrong':>7s}")
    for r in rows:
        print(f"{r['assignment']:32s}{r['mistakes']:9d}{r['named']:7d}{r['mislabelled']:12d}{r['new bugs']:9d}"
              f"{r['bugs named']:7d}{r['bugs unknown']:8d}{r['bugs wrongly named']:7d}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.feedback", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0x5EED, help="the secret standing in for the instructor's")
    args = parser.parse_args(argv)
    run(args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
