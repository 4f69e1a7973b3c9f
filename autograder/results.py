"""One result file per student and assignment, written atomically (``autograded/<student>/<assignment>/result.json``).

A result is replaced only by a complete new one: write to a temporary file, fsync, ``os.replace``.
A re-grade that fails for a grader-side reason never reaches :func:`save`, so the previous result
stays. Results hold scores, statuses (values with reasons) and messages — never expected values —
plus what they were computed from (the grading round, the job keys), so that ``grade`` can skip
what has not changed.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from .course import Course, write_private
from .pipeline import NotebookResult, combine_status
from .status import Status

FORMAT = 2


@dataclass
class AssignmentResult:
    student: str
    assignment: str
    status: Status
    notebooks: dict = field(default_factory=dict)      # notebook name -> NotebookResult
    graded_at: str = ""
    round: str = ""
    spec_fingerprint: str = ""
    references: str = ""

    @classmethod
    def combine(cls, student: str, assignment: str, notebooks: list[NotebookResult], *, spec_fingerprint: str,
                references: str, round: str) -> "AssignmentResult":
        return cls(student=student, assignment=assignment, status=combine_status(notebooks),
                   notebooks={r.notebook: r for r in sorted(notebooks, key=lambda r: r.notebook)},
                   graded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), round=round,
                   spec_fingerprint=spec_fingerprint, references=references)

    @property
    def message(self) -> str:
        return self.status.reason

    @property
    def score(self) -> float:
        return sum(nb.score for nb in self.notebooks.values())

    @property
    def max_score(self) -> float:
        return sum(nb.max_score for nb in self.notebooks.values())

    @property
    def keys(self) -> dict[str, str]:
        return {name: nb.key for name, nb in self.notebooks.items()}

    @property
    def review(self) -> list:
        return [item for nb in self.notebooks.values() for item in nb.review]

    def part_points(self) -> dict[str, float]:
        return {pid: v.points for nb in self.notebooks.values() for pid, v in nb.parts.items()}

    def to_dict(self) -> dict:
        return {"format": FORMAT, "student": self.student, "assignment": self.assignment,
                "status": self.status.to_dict(), "score": self.score, "max_score": self.max_score,
                "graded_at": self.graded_at, "round": self.round, "spec_fingerprint": self.spec_fingerprint,
                "references": self.references, "notebooks": {k: v.to_dict() for k, v in self.notebooks.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "AssignmentResult":
        if data.get("format") != FORMAT:
            raise ValueError("a result file of an older format (grade again to update it)")
        return cls(student=data["student"], assignment=data["assignment"], status=Status.from_dict(data["status"]),
                   graded_at=data.get("graded_at", ""), round=data.get("round", ""),
                   spec_fingerprint=data.get("spec_fingerprint", ""), references=data.get("references", ""),
                   notebooks={k: NotebookResult.from_dict(v) for k, v in data.get("notebooks", {}).items()})


def save(course: Course, result: AssignmentResult) -> None:
    path = course.result_path(result.student, result.assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(result.to_dict(), indent=1).encode())


def load(course: Course, student: str, assignment: str) -> AssignmentResult | None:
    """The stored result, or None (none yet, or one this version cannot read: it is graded again)."""
    path = course.result_path(student, assignment)
    if not path.is_file():
        return None
    try:
        return AssignmentResult.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError):
        return None
