"""One result file per student and assignment, written atomically (``autograded/<student>/<assignment>/result.json``).

A result is replaced only by a complete new one: write to a temporary file, fsync, ``os.replace``.
A re-grade that fails for a grader-side reason never reaches :func:`save`, so the previous result
stays. Results hold scores and messages, never expected values.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from .course import Course, write_private
from .pipeline import NotebookResult, combine_status


@dataclass
class AssignmentResult:
    student: str
    assignment: str
    status: str
    message: str
    notebooks: dict = field(default_factory=dict)      # notebook name -> NotebookResult
    graded_at: str = ""
    spec_fingerprint: str = ""
    references: str = ""

    @classmethod
    def combine(cls, student: str, assignment: str, notebooks: list[NotebookResult], *, spec_fingerprint: str,
                references: str) -> "AssignmentResult":
        status, message = combine_status(notebooks)
        return cls(student=student, assignment=assignment, status=status, message=message,
                   notebooks={r.notebook: r for r in sorted(notebooks, key=lambda r: r.notebook)},
                   graded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   spec_fingerprint=spec_fingerprint, references=references)

    @property
    def score(self) -> float:
        return sum(nb.score for nb in self.notebooks.values())

    @property
    def max_score(self) -> float:
        return sum(nb.max_score for nb in self.notebooks.values())

    def part_points(self) -> dict[str, float]:
        return {pid: v.points for nb in self.notebooks.values() for pid, v in nb.parts.items()}

    def to_dict(self) -> dict:
        return {"student": self.student, "assignment": self.assignment, "status": self.status,
                "message": self.message, "score": self.score, "max_score": self.max_score,
                "graded_at": self.graded_at, "spec_fingerprint": self.spec_fingerprint,
                "references": self.references,
                "notebooks": {k: v.to_dict() for k, v in self.notebooks.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "AssignmentResult":
        return cls(student=data["student"], assignment=data["assignment"], status=data["status"],
                   message=data.get("message", ""), graded_at=data.get("graded_at", ""),
                   spec_fingerprint=data.get("spec_fingerprint", ""), references=data.get("references", ""),
                   notebooks={k: NotebookResult.from_dict(v) for k, v in data.get("notebooks", {}).items()})


def save(course: Course, result: AssignmentResult) -> None:
    path = course.result_path(result.student, result.assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(result.to_dict(), indent=1).encode())


def load(course: Course, student: str, assignment: str) -> AssignmentResult | None:
    path = course.result_path(student, assignment)
    if not path.is_file():
        return None
    return AssignmentResult.from_dict(json.loads(path.read_text()))
