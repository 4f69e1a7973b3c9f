"""Grading rounds: the hidden cases change with each round, and stay the same within one.

A round is an explicit instructor action — a new deadline, a resubmission window —
(``python -m autograder round new --name "resubmission"``). Its id is recorded in every result;
the hidden cases are drawn from the secret *and* the round, so whatever a student learnt about
one round's cases from its feedback (their shapes, what an exception revealed) is useless in the
next, while re-grading within a round gives the same verdicts. Rounds live in
``private/rounds.json`` (0600); before the first ``round new`` the course is in round ``1``.
"""
from __future__ import annotations

import hashlib
import json
import re
import time

from .course import Course, ensure_private_dir, write_private

FIRST = "1"
NAME = re.compile(r"^[\w .,:()+-]{0,80}$")


def _path(course: Course):
    return course.private_dir / "rounds.json"


def history(course: Course) -> list[dict]:
    path = _path(course)
    if not path.is_file():
        return [{"id": FIRST, "name": "first round", "started": ""}]
    return json.loads(path.read_text())["rounds"]


def current(course: Course) -> str:
    return history(course)[-1]["id"]


def start_new(course: Course, name: str = "") -> dict:
    """Open the next round (hidden cases change from now on); return it."""
    if not NAME.match(name):
        raise ValueError("a round's name may hold letters, digits, spaces and .,:()+- (80 characters at most)")
    rounds = history(course)
    entry = {"id": str(int(rounds[-1]["id"]) + 1), "name": name,
             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rounds.append(entry)
    ensure_private_dir(course.private_dir)
    write_private(_path(course), json.dumps({"rounds": rounds}, indent=1).encode())
    return entry


def hidden_seed(course: Course, round_id: str | None = None) -> int:
    """The seed of the hidden cases: the instructor's secret and the round, hashed together."""
    round_id = round_id or current(course)
    digest = hashlib.sha256(f"{course.secret()}/round/{round_id}".encode()).digest()
    return int.from_bytes(digest[:16], "big")
