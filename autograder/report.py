"""``report``: one HTML page per assignment for the instructor, readable offline.

Each page shows the distribution of final scores (a PNG histogram), each part's pass rate (PNG),
the most frequent diagnoses, late, flagged, missing and not-yet-graded submissions, answers waiting
for manual grading, and **code similarity** (:mod:`autograder.similarity`): the pairs of students
whose answers to the same function are most alike, and the answers most alike to mlp_lib's own
implementation or to the solution, each with a side-by-side page. It reads results, the gradebook
and the submissions; it never changes a score.

Figures are drawn with matplotlib's Agg canvas (no display, no global pyplot state); pages link
their PNGs relatively, with no scripts and no external resources.
"""
from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import grades, matching, notebooks, similarity
from . import roster as roster_mod
from .course import Course, write_private
from .jobs import NotAFile
from .spec import load_spec

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; line-height: 1.45; padding: 0 1rem; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; } td, th { border: 1px solid #ccc; padding: .3rem .6rem;
text-align: left; vertical-align: top; } th { background: #f4f4f4; } .num { text-align: right; }
.warn { color: #9b1c1c; } img { max-width: 100%; } code, pre { font-size: .85rem; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; } pre { background: #fafafa; padding: .5rem;
overflow-x: auto; } .hit { background: #ffe08a; display: block; } .muted { color: #666; }
"""
e = html.escape


@dataclass
class Answer:
    student: str
    function: str
    fingerprint: similarity.Fingerprint


@dataclass
class Finding:
    function: str
    left: str                 # student
    right: str                # student, or a reference label
    score: float
    shared: int
    page: str = ""


def write_report(course: Course, *, assignments=None, output: Path | None = None) -> list[Path]:
    out = Path(output) if output else course.work / "report"
    out.mkdir(parents=True, exist_ok=True)
    roster = roster_mod.load(course)
    students = roster_mod.class_list(course, roster)
    names = grades.exported_assignments(course, assignments)
    pages = [write_assignment(course, name, students, out) for name in names]
    index = ["<h1>Class report</h1>", f"<p>{len(students)} students.</p><ul>"]
    index += [f"<li><a href='{e(p.name)}'>{e(p.stem)}</a></li>" for p in pages]
    index.append("</ul>")
    write_private(out / "index.html", _page("Class report", "\n".join(index)).encode())
    return [out / "index.html", *pages]


def write_assignment(course: Course, assignment: str, students: list[str], out: Path) -> Path:
    folder = out / assignment
    folder.mkdir(parents=True, exist_ok=True)
    table = grades.assess(course, [assignment], students)
    graded = [g for g in table if g.result is not None and g.kind != "missing"]
    body = [f"<h1>{e(assignment)}</h1>", _overview(table, graded)]
    body.append(_histogram(table, folder))
    body.append(_pass_rates(graded, folder))
    body.append(_diagnoses(graded))
    body.append(_lists(table))
    spec = load_spec(course, assignment)
    pairs, library = find_similar(course, spec, students, folder)
    body.append(_similarity_section(pairs, library))
    write_private(folder / "similarity.json", findings_json(pairs, library).encode())
    path = out / f"{assignment}.html"
    write_private(path, _page(f"Class report: {assignment}", "\n".join(body)).encode())
    return path


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}\n<p class='muted'>Written by <code>python -m autograder "
            "report</code>. Similarity is a pointer for a human review, never proof: it changes no score.</p>"
            "</body></html>\n")


# -- sections ---------------------------------------------------------------------------------------
def _overview(table, graded) -> str:
    scored = [g.score for g in table if g.graded]
    counts = Counter(g.kind for g in table)
    mean = sum(scored) / len(scored) if scored else 0.0
    median = sorted(scored)[len(scored) // 2] if scored else 0.0
    maximum = table[0].max_score if table else 0.0
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))
    return (f"<p>{len(table)} students · {len(graded)} graded submissions · mean {mean:.2f} · median {median:g} "
            f"of {maximum:g} points (final scores: auto + manual − late penalty; no submission after the deadline "
            f"counts 0).</p><p class='muted'>Statuses — {e(kinds)}</p>")


def _figure(width=6.4, height=3.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _histogram(table, folder: Path) -> str:
    scored = [g.score for g in table if g.graded]
    if not scored:
        return "<h2>Scores</h2><p>No scores yet.</p>"
    maximum = max(g.max_score for g in table) or 1.0
    fig = _figure()
    ax = fig.add_subplot()
    bins = max(5, min(20, int(maximum) + 1))
    ax.hist(scored, bins=bins, range=(0, maximum), color="#3b6ea5", edgecolor="white")
    ax.set_xlabel("final score")
    ax.set_ylabel("students")
    ax.set_title(f"{len(scored)} students")
    fig.tight_layout()
    fig.savefig(folder / "histogram.png")
    return f"<h2>Scores</h2><img src='{e(folder.name)}/histogram.png' alt='histogram of the final scores'>"


def _pass_rates(graded, folder: Path) -> str:
    if not graded:
        return ""
    parts = list(graded[0].part_max)
    rates = []
    for pid in parts:
        passed = sum(1 for g in graded for nb in g.result.notebooks.values()
                     if pid in nb.parts and nb.parts[pid].status == "passed")
        rates.append(passed / len(graded))
    fig = _figure(height=max(2.0, 0.35 * len(parts) + 1))
    ax = fig.add_subplot()
    ax.barh(parts[::-1], rates[::-1], color="#5a9e6f")
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of graded submissions passing")
    fig.tight_layout()
    fig.savefig(folder / "parts.png")
    rows = "".join(f"<tr><td><code>{e(p)}</code></td><td class='num'>{r:.0%}</td></tr>" for p, r in zip(parts, rates))
    return (f"<h2>Pass rate per part</h2><img src='{e(folder.name)}/parts.png' alt='pass rate per part'>"
            f"<table><tr><th>part</th><th>passed</th></tr>{rows}</table>")


def _diagnoses(graded) -> str:
    seen: Counter = Counter()
    example: dict = {}
    for g in graded:
        for nb in g.result.notebooks.values():
            for pid, verdict in nb.parts.items():
                if verdict.status == "passed":
                    continue
                causes = list(verdict.diagnoses) or [f"({verdict.status})"]
                for cause in causes:
                    seen[(pid, cause)] += 1
                    if verdict.messages:
                        example.setdefault((pid, cause), verdict.messages[0])
    if not seen:
        return "<h2>Most frequent diagnoses</h2><p>Every graded part passed.</p>"
    rows = "".join(f"<tr><td><code>{e(pid)}</code></td><td>{e(cause)}</td><td class='num'>{n}</td>"
                   f"<td>{e(example.get((pid, cause), ''))[:300]}</td></tr>"
                   for (pid, cause), n in seen.most_common(15))
    return ("<h2>Most frequent diagnoses</h2><table><tr><th>part</th><th>diagnosis</th><th>students</th>"
            f"<th>example message</th></tr>{rows}</table>")


def _lists(table) -> str:
    out = []
    late = [g for g in table if g.lateness and g.lateness.late and g.kind != "missing"]
    if late:
        rows = "".join(f"<tr><td>{e(g.student)}</td><td>{e(g.lateness.describe())}</td>"
                       f"<td class='num'>{g.penalty:g}</td></tr>" for g in late)
        out.append(f"<h2>Late ({len(late)})</h2><table><tr><th>student</th><th>lateness</th><th>penalty</th></tr>"
                   f"{rows}</table>")
    flagged = [g for g in table if g.review]
    if flagged:
        rows = "".join(f"<tr><td>{e(g.student)}</td><td>{e('; '.join(_review_text(item) for item in g.review))[:600]}"
                       f"</td></tr>" for g in flagged)
        out.append(f"<h2>Flagged for review ({len(flagged)})</h2><table><tr><th>student</th><th>what grading "
                   f"flagged (the score is unchanged)</th></tr>{rows}</table>")
    for title, chosen in (("Held: the score waits for you", [g for g in table if g.held]),
                          ("Did not finish", [g for g in table if g.result is not None
                                              and g.kind not in ("graded", "held", "missing")]),
                          ("Not graded (needs you)", [g for g in table if g.result is None and g.kind != "missing"]),
                          ("Missing", [g for g in table if g.kind == "missing"])):
        if chosen:
            rows = "".join(f"<tr><td>{e(g.student)}</td><td>{e(g.status)}</td><td>{e(g.message)[:400]}</td></tr>"
                           for g in chosen)
            out.append(f"<h2>{title} ({len(chosen)})</h2><table><tr><th>student</th><th>status</th>"
                       f"<th>message</th></tr>{rows}</table>")
    pending = [g for g in table if g.pending and g.result is not None]
    if pending:
        rows = "".join(f"<tr><td>{e(g.student)}</td><td>{e(', '.join(g.pending))}</td></tr>" for g in pending)
        out.append(f"<h2>Waiting for manual grading ({len(pending)})</h2><p>Grade them in nbgrader's formgrader "
                   f"(<code>python -m autograder formgrader</code>).</p><table><tr><th>student</th><th>cells</th>"
                   f"</tr>{rows}</table>")
    return "\n".join(out)


def _review_text(item) -> str:
    if isinstance(item, dict):
        return ", ".join(f"{k}: {v}" for k, v in item.items() if k != "source")
    return str(item)


# -- similarity ------------------------------------------------------------------------------------------
def student_answers(course: Course, spec, students) -> list[Answer]:
    """Every student's answer to every graded function (their own cells only), fingerprinted
    without the release's starter code."""
    functions = sorted({p.function for p in spec.parts})
    starters = similarity.starter_code(course, spec.name, functions)
    out = []
    for student in students:
        found = matching.submission_files(course, student, spec.name)
        code = []
        for path in found.files.values():
            try:
                cells = notebooks.read_submission(matching.submitted_bytes(course, path) or b"",
                                                  max_bytes=course.limits.max_notebook_mb << 20)
            except (NotAFile, notebooks.Unreadable, OSError):   # a link, not a notebook: nothing to compare
                continue
            code += [notebooks.source_text(c) for c in cells
                     if c.get("cell_type") == "code" and not notebooks.is_instructor_cell(c)]
        for function, source in similarity.answers_of(code, functions).items():
            out.append(Answer(student, function, similarity.fingerprint(source, starter=starters.get(function))))
    return out


def find_similar(course: Course, spec, students, folder: Path | None = None) -> tuple[list[Finding], list[Finding]]:
    """(pairs of students, answers alike to a reference), each ranked by similarity, highest first."""
    answers = [a for a in student_answers(course, spec, students) if a.fingerprint.comparable]
    corpus = similarity.reference_corpus(course, spec)
    pairs, library = [], []
    by_function: dict[str, list[Answer]] = {}
    for a in answers:
        by_function.setdefault(a.function, []).append(a)
    for function, group in sorted(by_function.items()):
        common = similarity.common_fingerprints([a.fingerprint for a in group])
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                s = similarity.compare(a.fingerprint, b.fingerprint, ignore=common)
                if s.score >= similarity.THRESHOLD:
                    pairs.append((Finding(function, a.student, b.student, s.score, s.shared), a, b, s))
        for a in group:
            for ref in corpus.get(function, []):
                s = similarity.containment(a.fingerprint, ref.fingerprint)
                if s.score >= similarity.THRESHOLD:
                    library.append((Finding(function, a.student, ref.label, s.score, s.shared), a, ref, s))
    pairs.sort(key=lambda t: (-t[0].score, -t[0].shared, t[0].left, t[0].right))
    library.sort(key=lambda t: (-t[0].score, -t[0].shared, t[0].left, t[0].right))
    if folder is not None:
        for n, (finding, a, b, s) in enumerate(pairs, 1):
            finding.page = _side_by_side(folder, f"pair-{n}.html", finding, a.fingerprint.source,
                                         b.fingerprint.source, s)
        for n, (finding, a, ref, s) in enumerate(library, 1):
            finding.page = _side_by_side(folder, f"reference-{n}.html", finding, a.fingerprint.source,
                                         ref.fingerprint.source, s)
    return [t[0] for t in pairs], [t[0] for t in library]


def _side_by_side(folder: Path, name: str, finding: Finding, left: str, right: str, s) -> str:
    def pane(title, source, lines):
        text = source.split("\n")
        first = 1
        body = "".join(f"<span class='hit'>{e(t) or ' '}</span>" if first + i in lines else f"{e(t)}\n"
                       for i, t in enumerate(text))
        return f"<div><h2>{e(title)}</h2><pre>{body}</pre></div>"

    page = (f"<h1><code>{e(finding.function)}</code>: {finding.score:.0%} alike</h1>"
            f"<p>{finding.shared} shared fingerprints; highlighted lines hold shared code (names and constants "
            "ignored, starter code and code most of the class wrote alike left out).</p><div class='side'>"
            + pane(finding.left, left, s.lines_a) + pane(finding.right, right, s.lines_b) + "</div>")
    write_private(folder / name, _page(f"{finding.left} / {finding.right}", page).encode())
    return f"{folder.name}/{name}"


def _similarity_section(pairs: list[Finding], library: list[Finding]) -> str:
    def table(items, right_title):
        rows = "".join(f"<tr><td class='num'>{i}</td><td><code>{e(f.function)}</code></td><td>{e(f.left)}</td>"
                       f"<td>{e(f.right)}</td><td class='num'>{f.score:.0%}</td><td class='num'>{f.shared}</td>"
                       f"<td><a href='{e(f.page)}'>side by side</a></td></tr>" for i, f in enumerate(items, 1))
        return (f"<table><tr><th>#</th><th>function</th><th>student</th><th>{right_title}</th><th>alike</th>"
                f"<th>shared</th><th></th></tr>{rows}</table>")

    out = [f"<h2>Code similarity</h2><p class='muted'>Answers shorter than {similarity.MIN_TOKENS} syntax tokens "
           f"beyond the starter code are not compared; listed from {similarity.THRESHOLD:.0%} on.</p>"]
    out.append(f"<h3>Students with alike answers ({len(pairs)})</h3>")
    out.append(table(pairs, "other student") if pairs else "<p>None.</p>")
    out.append(f"<h3>Answers alike to mlp_lib or the solution ({len(library)})</h3>")
    out.append(table(library, "reference") if library else "<p>None.</p>")
    return "\n".join(out)


def findings_json(pairs: list[Finding], library: list[Finding]) -> str:
    """The findings as JSON (for scripts and tests)."""
    return json.dumps({"pairs": [f.__dict__ for f in pairs], "references": [f.__dict__ for f in library]}, indent=1)

