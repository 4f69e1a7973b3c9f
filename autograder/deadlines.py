"""Due dates, grace periods, late penalties and extensions, per assignment (``autograder.toml``).

::

    [course]
    timezone = "Europe/Paris"            # dates written without an offset are in this zone (default UTC)

    [assignments.ch05_relu_variants]
    due = 2025-10-06T23:59:00            # a TOML date-time (or a string "2025-10-06 23:59", or a date)
    grace_minutes = 15                   # submitted within the grace period = on time
    penalty_per_day = 0.10               # fraction of the assignment's points per started day late
    penalty_cap = 0.50                   # at most this fraction (default 1: down to zero)
    extensions = { "ada.lovelace" = 2025-10-09T23:59:00 }   # a later due date for some students
    lms_name = "Chapter 5: ReLU variants"  # the assignment's title in the learning platform (export)
    released = true                      # list it in exports before anyone is graded or it is due

The grade keeps the raw points and the penalty apart: the penalty is computed when grades are
exported (from ``submitted/<student>/<assignment>/timestamp.txt``, nbgrader's file), so a new
extension needs no re-grade. Lateness is measured from the student's due date; a submission within
the grace period is on time; each started day late costs ``penalty_per_day``.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .course import ConfigError   # a wrong [assignments.<name>] or [course] entry

KEYS = ("due", "grace_minutes", "penalty_per_day", "penalty_cap", "extensions", "lms_name", "released")
TIMESTAMP_FILE = "timestamp.txt"
# nbgrader's Exchange.timestamp_format (its parse_utc reads it back)
NBGRADER_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"


@dataclass(frozen=True)
class Policy:
    """One assignment's deadline and penalty rules (all times timezone-aware)."""

    assignment: str
    due: dt.datetime | None = None
    grace: dt.timedelta = dt.timedelta(0)
    penalty_per_day: float = 0.0
    penalty_cap: float = 1.0
    extensions: dict = field(default_factory=dict, hash=False)      # student -> aware datetime
    lms_name: str = ""
    released: bool | None = None

    def due_for(self, student: str) -> dt.datetime | None:
        return self.extensions.get(student, self.due)

    def lateness(self, student: str, submitted: dt.datetime | None) -> "Lateness":
        due = self.due_for(student)
        if due is None or submitted is None or submitted <= due + self.grace:
            return Lateness(submitted=submitted, due=due)
        late_by = submitted - due
        days = math.ceil(late_by / dt.timedelta(days=1))
        return Lateness(submitted=submitted, due=due, late_by=late_by, days=days,
                        penalty_fraction=min(self.penalty_cap, days * self.penalty_per_day))


@dataclass(frozen=True)
class Lateness:
    submitted: dt.datetime | None
    due: dt.datetime | None
    late_by: dt.timedelta = dt.timedelta(0)
    days: int = 0                       # started days late
    penalty_fraction: float = 0.0       # of the assignment's points
    platform_late: bool = False         # the platform said late, and gave no time (Canvas's _LATE)

    @property
    def late(self) -> bool:
        return self.late_by > dt.timedelta(0) or self.platform_late

    def describe(self) -> str:
        if self.platform_late and not self.late_by:
            return "late according to the learning platform (no submission time: no penalty computed)"
        if not self.late:
            return ""
        hours = self.late_by.total_seconds() / 3600
        span = f"{hours:.1f} hours" if hours < 48 else f"{self.late_by.total_seconds() / 86400:.1f} days"
        penalty = f", penalty {self.penalty_fraction:.0%} of the points" if self.penalty_fraction else ""
        return f"submitted {span} late{penalty}"


def zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Paris' or 'UTC')") from None


def parse_time(value, tz: dt.tzinfo) -> dt.datetime:
    """An aware datetime from a TOML date-time/date or a string; naive values are in ``tz``."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time(23, 59, 59))    # a date alone: the end of that day
    elif isinstance(value, str) and value.strip():
        moment = _parse_string(value.strip(), tz)
    else:
        raise ConfigError(f"expected a date and time, got {value!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _parse_string(text: str, tz: dt.tzinfo) -> dt.datetime:
    parts = text.split(" ")
    if len(parts) == 3 and parts[2].isalpha():        # nbgrader: "2025-10-06 21:59:00.000000 UTC"
        return dt.datetime.fromisoformat(f"{parts[0]} {parts[1]}").replace(tzinfo=zone(parts[2]))
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    from dateutil import parser as dateparser

    try:
        return dateparser.parse(text)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"cannot read the date {text!r} ({exc})") from None


def course_zone(course) -> dt.tzinfo:
    return zone(course.timezone)


def policy(course, assignment: str) -> Policy:
    """The rules of ``assignment`` ([assignments.<name>]; none configured: no deadline)."""
    table = course.assignment_config.get(assignment, {})
    tz = course_zone(course)
    where = f"[assignments.{assignment}]"
    try:
        due = parse_time(table["due"], tz) if "due" in table else None
        extensions = {str(s): parse_time(v, tz) for s, v in dict(table.get("extensions", {})).items()}
    except ConfigError as exc:
        raise ConfigError(f"autograder.toml {where}: {exc}") from None
    grace = _number(table, "grace_minutes", 0.0, where)
    per_day = _number(table, "penalty_per_day", 0.0, where)
    cap = _number(table, "penalty_cap", 1.0, where)
    if not (0 <= per_day <= 1 and 0 <= cap <= 1 and grace >= 0):
        raise ConfigError(f"autograder.toml {where}: penalty_per_day and penalty_cap are fractions in [0, 1], "
                          "grace_minutes >= 0")
    released = table.get("released")
    if released is not None and not isinstance(released, bool):
        raise ConfigError(f"autograder.toml {where}: released must be true or false")
    return Policy(assignment=assignment, due=due, grace=dt.timedelta(minutes=grace), penalty_per_day=per_day,
                  penalty_cap=cap, extensions=extensions, lms_name=str(table.get("lms_name", "")),
                  released=released)


def _number(table, key, default, where) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"autograder.toml {where}: {key} must be a number, got {value!r}")
    return float(value)


def check_config(course) -> None:
    """Validate [course] and every [assignments.<name>] table (called when the course is opened)."""
    course_zone(course)
    known = set(course.assignments())
    for name, table in course.assignment_config.items():
        if known and name not in known:
            raise ConfigError(f"autograder.toml: [assignments.{name}] names no assignment of "
                              f"{course.source_dir.name}/ (known: {', '.join(sorted(known))})")
        if not isinstance(table, dict):
            raise ConfigError(f"autograder.toml: [assignments.{name}] must be a table")
        unknown = set(table) - set(KEYS)
        if unknown:
            raise ConfigError(f"autograder.toml [assignments.{name}]: unknown keys {sorted(unknown)} "
                              f"(known: {', '.join(KEYS)})")
        policy(course, name)


# -- submission times (nbgrader's timestamp.txt) -----------------------------------------------------
def read_timestamp(course, student: str, assignment: str) -> dt.datetime | None:
    """When the student submitted (``timestamp.txt``, as nbgrader writes it), or None."""
    path = course.submission_dir(student, assignment) / TIMESTAMP_FILE
    if not path.is_file() or path.is_symlink():
        return None
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        return parse_time(text, course_zone(course))
    except (ConfigError, ValueError):
        return None


def write_timestamp(folder: Path, moment: dt.datetime) -> None:
    """``timestamp.txt`` in nbgrader's format, in UTC."""
    from .course import write_private

    utc = moment.astimezone(dt.timezone.utc)
    write_private(folder / TIMESTAMP_FILE, (utc.strftime(NBGRADER_FORMAT) + "\n").encode())


def lateness(course, student: str, assignment: str) -> Lateness:
    """How late the student's submission is (timestamp.txt against the policy); without a time, the
    platform's own late flag recorded by ``collect`` is reported (with no penalty)."""
    from dataclasses import replace

    from .collect import lms_record

    submitted = read_timestamp(course, student, assignment)
    result = policy(course, assignment).lateness(student, submitted)
    if submitted is None and lms_record(course, student, assignment).get("lms_late"):
        result = replace(result, platform_late=True)
    return result


def as_utc_naive(moment: dt.datetime | None) -> dt.datetime | None:
    """What nbgrader's gradebook stores (naive UTC)."""
    return None if moment is None else moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
