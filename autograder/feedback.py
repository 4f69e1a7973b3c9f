"""``feedback``: one HTML page per student and notebook, built from the stored result only.

A page shows, per part: the points, and for a part that lost them the quantity that differs, the
shapes, the size of the error and a likely cause. It never contains notebook source (so no hidden
test section can leak), expected values or the student's process output (which could carry hidden
inputs): only the grader's own messages, escaped.
"""
from __future__ import annotations

import html
from pathlib import Path

from . import results
from .course import Course, write_private



def book_url(label: str, base: str = "../../book/") -> str:
    """The book page and anchor of a section label (``ch03-local-gradients``)."""
    from . import booklinks

    return booklinks.url(label, base=base)

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; line-height: 1.45; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #ccc; padding: .4rem .6rem;
vertical-align: top; text-align: left; } .passed { color: #176b1d; } .lost { color: #9b1c1c; }
.status { font-weight: bold; } ul.notes { color: #555; }
"""

_RESULT_WORDS = {"passed": "correct", "failed": "wrong", "error": "raised an error", "missing": "not graded",
                 "pending": "pending (held for the instructor)"}


def render(result: results.AssignmentResult, notebook: str) -> str:
    nb = result.notebooks[notebook]
    e = html.escape
    rows = []
    for pid, v in nb.parts.items():
        cls = "passed" if v.status == "passed" else "lost"
        details = "<br>".join(e(m) for m in v.messages) or "&nbsp;"
        if v.book:
            details += "<br>Read: " + ", ".join(f"<a href='{e(book_url(label))}'>{e(label)}</a>" for label in v.book)
        rows.append(f"<tr><td><code>{e(pid)}</code></td><td class='{cls}'>{v.points:g} / {v.max_points:g}</td>"
                    f"<td class='{cls}'>{e(_RESULT_WORDS.get(v.status, v.status))}</td><td>{details}</td></tr>")
    notes = [f"<code>{e(label)}</code> raised {e(name)}."
             for label, kind, name in nb.cell_errors if kind == "student"]
    notes += [e(n) for n in nb.notes]
    notes_html = ("<h2>Notes</h2><ul class='notes'>" + "".join(f"<li>{n}</li>" for n in notes) + "</ul>"
                  if notes else "")
    status = nb.status.kind if not nb.status.reason else f"{nb.status.kind} — {nb.status.reason}"
    score = "pending" if nb.status.pending else f"{nb.score:g} / {nb.max_score:g}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback: {e(result.assignment)} / {e(notebook)}</title>
<style>{_STYLE}</style></head><body>
<h1>{e(result.assignment)} / {e(notebook)}.ipynb</h1>
<p>Student: <code>{e(result.student)}</code> · graded {e(result.graded_at)}</p>
<p class="status">Score: {score} · status: {e(status)}</p>
<table><thead><tr><th>Part</th><th>Points</th><th>Result</th><th>Details</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
{notes_html}
<p><small>Each part was run on hidden inputs and compared with reference outputs computed by the grader.
Run <code>python -m autograder check</code> on your notebook to test it on public cases.</small></p>
</body></html>
"""


def write_all(course: Course, *, assignments=None, students=None) -> list[Path]:
    """feedback/<student>/<assignment>/<notebook>.html for every stored result."""
    from .grades import feedback_sections

    written = []
    for assignment in assignments or course.assignments():
        extra = feedback_sections(course, assignment, students or course.students())   # issue 13: manual, late, total
        for student in students or course.students():
            result = results.load(course, student, assignment)
            if result is None:
                continue
            for notebook in result.notebooks:
                path = course.feedback_dir / student / assignment / f"{notebook}.html"
                path.parent.mkdir(parents=True, exist_ok=True)
                page = render(result, notebook).replace("</body>", extra.get((student, notebook), "") + "</body>")
                write_private(path, page.encode("utf-8"))
                written.append(path)
    return written
