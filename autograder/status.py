"""Statuses are values: a kind from a fixed list and the reason, in words the instructor can act on.

A notebook's or an assignment's status says how grading went, never how well the student did
(that is the score). Kinds, most serious first (an assignment shows its most serious notebook's):

``held``        the grader could not analyse the submission within its limits: the score is pending
                until the instructor looks (never a pass, never a silent 0)
``unreadable``  not notebook JSON, an unsupported format, too large, a link rather than a file
``crashed``     the notebook's process died before the end (parts recorded before it count)
``timeout``     a cell or the notebook ran out of time (parts recorded before it count)
``missing``     nothing submitted
``graded``      ran to the end (failing public tests and cell errors included)
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("held", "unreadable", "crashed", "timeout", "missing", "graded")


@dataclass(frozen=True)
class Status:
    kind: str
    reason: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"status kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def severity(self) -> int:
        """0 for the most serious kind."""
        return KINDS.index(self.kind)

    @property
    def pending(self) -> bool:
        """The score is not final until a person looks."""
        return self.kind == "held"

    def __str__(self) -> str:
        return self.kind if not self.reason else f"{self.kind}: {self.reason}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "reason": self.reason}

    @classmethod
    def from_dict(cls, data) -> "Status":
        return cls(str(data["kind"]), str(data.get("reason", "")))


GRADED = Status("graded")


def most_serious(statuses, *, labels=None) -> Status:
    """The most serious of ``statuses``; with ``labels`` (one per status), its reason names where it came from."""
    statuses = list(statuses)
    if not statuses:
        return Status("missing", "nothing submitted")
    i = min(range(len(statuses)), key=lambda k: statuses[k].severity)
    worst = statuses[i]
    if labels is not None and len(statuses) > 1 and worst.kind != "graded":
        return Status(worst.kind, f"{labels[i]}: {worst.reason}")
    return worst
