"""What a ``grade`` run did, on one screen, and in a log file: ``grade --dry-run`` and the run summary.

:func:`plan` lists what would be graded (each student's files and how they were recognised) and what
could not be matched, without running anything. :func:`finish` turns a finished run into the
summary — graded, flagged, missing, late, errors, submissions that need the instructor — prints at
most a screen of it and writes everything to ``WORK/logs/grade-<time>.log``. Both read only
results' ``student``, ``assignment``, ``status``, ``message``, ``score`` and ``max_score``.
"""
from __future__ import annotations

from . import deadlines, matching
from . import roster as roster_mod
from .collect import write_log
from .grades import status_kind

SCREEN_ITEMS = 8        # per list on the screen; the log has them all


def plan(course, assignments, students) -> list[str]:
    """``grade --dry-run``: per assignment, each student's files (and how they were matched),
    blocked submissions and files that match nothing; nothing is executed or written."""
    roster = roster_mod.load(course)
    lines = []
    for assignment in assignments:
        names = [p.stem for p in course.source_notebooks(assignment)]
        lines.append(f"{assignment} ({', '.join(n + '.ipynb' for n in names)}):")
        counts = {"graded": 0, "missing": 0, "blocked": 0}
        for student in students:
            found = matching.submission_files(course, student, assignment)
            if found.blocked:
                counts["blocked"] += 1
                lines.append(f"  {student}: NOT GRADED — {'; '.join(found.problems)}")
                continue
            parts = []
            for name in names:
                path = found.files.get(name)
                parts.append(f"{name} <- {path.name} ({found.how[name]})" if path else f"{name}: missing")
            counts["graded" if found.files else "missing"] += 1
            late = deadlines.lateness(course, student, assignment)
            lines.append(f"  {student}: {'; '.join(parts)}" + (f" [{late.describe()}]" if late.late else ""))
            lines += [f"      could not match {p}" for p in found.problems]
        not_on_roster = [s for s in students if roster is not None and s not in roster]
        lines.append(f"  would grade {counts['graded']}, missing {counts['missing']}, "
                     f"not graded (two notebooks for one) {counts['blocked']}"
                     + (f"; not on the roster: {', '.join(not_on_roster)}" if not_on_roster else ""))
    return lines


def finish(course, report, assignments, students, *, seconds: float) -> tuple[list[str], list[str]]:
    """(the lines to print, the submissions not graded because they need the instructor) for a
    finished ``grade`` run (``report``: batch.GradeReport); the full log goes to WORK/logs/."""
    graded = list(report.graded)
    kinds = {id(r): status_kind(r.status) for r in graded}
    held = [r for r in graded if kinds[id(r)] == "held"]
    missing = [r for r in graded if kinds[id(r)] == "missing"]
    troubled = [r for r in graded if kinds[id(r)] not in ("graded", "missing", "held")]
    flagged = [r for r in graded if getattr(r, "review", None)]
    late, blocked, unmatched = [], [], []
    for assignment in assignments:
        for student in students:
            found = matching.submission_files(course, student, assignment)
            if found.blocked:
                blocked.append(f"{student} {assignment}: {'; '.join(found.problems)}")
            else:
                unmatched += [f"{student} {assignment}: {p}" for p in found.problems]
            lateness = deadlines.lateness(course, student, assignment)
            if lateness.late and found.files:
                late.append(f"{student} {assignment}: {lateness.describe()}")
    sections = [
        ("flagged for review (copies: see the results and the class report)",
         [f"{r.student} {r.assignment}: {len(r.review)} item(s)" for r in flagged]),
        ("held: the score waits for you", [f"{r.student} {r.assignment}: {r.message}" for r in held]),
        ("missing", [f"{r.student} {r.assignment}: {r.message}" for r in missing]),
        ("did not finish", [f"{r.student} {r.assignment}: {r.status}" for r in troubled]),
        ("late", late),
        ("errors (previous result kept)", [f"{s} {a}: {m}" for s, a, m in report.errors]),
        ("not graded: two notebooks for one (remove one and grade again)", blocked),
        ("files that match no notebook (not graded)", unmatched),
    ]
    skipped = getattr(report, "skipped", [])
    head = (f"graded {len(graded)} submissions ({len(assignments)} assignments, {len(students)} students) "
            f"in {seconds:.0f} s: {len(graded) - len(held) - len(missing) - len(troubled)} ran to the end, "
            f"{len(flagged)} flagged for review, {len(held)} held, {len(missing)} missing, {len(late)} late, "
            f"{len(report.errors)} errors, {len(blocked)} not graded"
            + (f"; {len(skipped)} unchanged since their last grading (skipped; --regrade grades them)"
               if skipped else ""))
    screen, log = [head], [head]
    for title, items in sections:
        if not items:
            continue
        screen.append(f"{title}: {len(items)}")
        screen += [f"  {i}" for i in items[:SCREEN_ITEMS]]
        if len(items) > SCREEN_ITEMS:
            screen.append(f"  ... {len(items) - SCREEN_ITEMS} more in the log")
        log.append(f"{title}: {len(items)}")
        log += [f"  {i}" for i in items]
    if getattr(report, "interrupted", False):
        screen.append("interrupted: the finished results are saved and in the gradebook; run the same command "
                      "again to grade the rest (finished submissions are skipped)")
        log.append(screen[-1])
    log.append("results:")
    for r in graded:
        score = "pending" if kinds[id(r)] == "held" else f"{r.score:g}/{r.max_score:g}"
        log.append(f"  {r.student:24s} {r.assignment:32s} {score:>10s}  {r.status}")
    path = write_log(course, "grade", log)
    screen.append(f"log: {path}")
    return screen, blocked
