"""The class list: who is in the course, and how each learning platform names them.

``roster.csv`` (``WORK/roster.csv`` by default, ``[course] roster`` in autograder.toml; ``collect
--roster FILE`` installs one), UTF-8, one row per student, a header naming these columns:

=============  =========================================================================
``id``         required: the course's student id — the folder name in ``submitted/``, the
               gradebook's student id (letters, digits, ``. _ - @ +``)
``first_name``, ``last_name``, ``name``   the name (``name`` defaults to "first last")
``email``      e-mail address (Moodle's grading worksheet, Moodle and Gradescope imports)
``sis_id``     the institution's student number (Canvas "SIS User ID", Moodle "ID number",
               Gradescope "SID")
``lms_id``     the learning platform's user id (Canvas "ID", the ``<user id>`` of its file names)
``login_id``   the platform login (Canvas "SIS Login ID", Moodle username)
``section``    section or group
=============  =========================================================================

Other columns are an error (a misspelt header would otherwise lose a column silently). Names
are compared without accents, case or punctuation, in either order ("Ada Lovelace",
"lovelaceada"), and only when exactly one student has that name.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, fields
from pathlib import Path

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}$")


class RosterError(ValueError):
    """The roster file is malformed (printed as one error line)."""


@dataclass(frozen=True)
class Student:
    id: str
    first_name: str = ""
    last_name: str = ""
    name: str = ""
    email: str = ""
    sis_id: str = ""
    lms_id: str = ""
    login_id: str = ""
    section: str = ""

    @property
    def display_name(self) -> str:
        return self.name or " ".join(p for p in (self.first_name, self.last_name) if p) or self.id

    @property
    def first_and_last(self) -> tuple[str, str]:
        """(first name, last name); from ``name`` ("Ada Lovelace") when the roster has no split names."""
        if self.first_name or self.last_name:
            return self.first_name, self.last_name
        first, _, last = self.display_name.partition(" ")
        return first, last

    @property
    def sortable_name(self) -> str:
        """"Last, First" (Canvas's Student column)."""
        if self.last_name or self.first_name:
            return ", ".join(p for p in (self.last_name, self.first_name) if p)
        parts = self.display_name.split()
        return f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else self.display_name

    def name_keys(self) -> set[str]:
        """The name in the forms platforms write it (first-last and last-first), normalised."""
        keys = {name_key(self.display_name)}
        if self.first_name or self.last_name:
            keys |= {name_key(self.first_name + self.last_name), name_key(self.last_name + self.first_name)}
        else:
            parts = self.display_name.split()
            if len(parts) > 1:
                keys.add(name_key(parts[-1] + "".join(parts[:-1])))
        return {k for k in keys if k}


COLUMNS = tuple(f.name for f in fields(Student))


def name_key(text: str) -> str:
    """Lower-case letters and digits only, accents removed ("Ada Lovelace" -> "adalovelace")."""
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text.lower() if ch.isalnum() and not unicodedata.combining(ch))


class Roster:
    """The students of the course, in file order, with look-ups by every identifier."""

    def __init__(self, students: list[Student], *, path: Path | None = None):
        self.students = tuple(students)
        self.path = path
        self.by_id = {s.id: s for s in self.students}
        self._unique: dict[str, dict[str, Student]] = {}
        for attr in ("email", "sis_id", "lms_id", "login_id"):
            self._unique[attr] = {}
            for s in self.students:
                value = getattr(s, attr).strip().lower()
                if value:
                    if value in self._unique[attr]:
                        raise RosterError(f"{path or 'roster'}: {attr} {getattr(s, attr)!r} appears twice "
                                          f"({self._unique[attr][value].id}, {s.id})")
                    self._unique[attr][value] = s
        self._names: dict[str, list[Student]] = {}
        for s in self.students:
            for key in s.name_keys():
                self._names.setdefault(key, []).append(s)

    def __iter__(self):
        return iter(self.students)

    def __len__(self) -> int:
        return len(self.students)

    def __contains__(self, student_id: str) -> bool:
        return student_id in self.by_id

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.students]

    def find(self, *, email: str = "", sis_id: str = "", lms_id: str = "", login_id: str = "",
             name: str = "") -> Student | None:
        """The student with this identifier (the first one given that is known), or by a unique name."""
        for attr, value in (("lms_id", lms_id), ("email", email), ("sis_id", sis_id), ("login_id", login_id)):
            if value and value.strip().lower() in self._unique[attr]:
                return self._unique[attr][value.strip().lower()]
        if name:
            found = {s.id: s for s in self._names.get(name_key(name), [])}
            if len(found) == 1:
                return next(iter(found.values()))
        return None

    def find_any(self, key: str) -> Student | None:
        """A student named by any of their identifiers (a folder or file-name prefix in a plain download)."""
        if key in self.by_id:
            return self.by_id[key]
        return self.find(email=key, sis_id=key, lms_id=key, login_id=key, name=key)


def read(path: Path) -> Roster:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")      # spreadsheets add a byte-order mark
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"cannot read the roster {path}: {exc}") from None
    return parse(text, path=path)


def parse(text: str, *, path: Path | None = None) -> Roster:
    where = path or "roster"
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "id" not in header:
        raise RosterError(f"{where}: the header needs an 'id' column (columns: {', '.join(COLUMNS)})")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise RosterError(f"{where}: unknown columns {unknown} (known: {', '.join(COLUMNS)})")
    students, seen = [], set()
    for line, row in enumerate(reader, start=2):
        values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(values.values()):
            continue
        sid = values.get("id", "")
        if not STUDENT_ID.match(sid) or sid in (".", ".."):
            raise RosterError(f"{where}, line {line}: student id {sid!r} must be letters, digits and . _ - @ + "
                              "(it names a folder)")
        if sid in seen:
            raise RosterError(f"{where}, line {line}: student id {sid!r} appears twice")
        seen.add(sid)
        students.append(Student(**{k: values.get(k, "") for k in COLUMNS}))
    return Roster(students, path=path)


def load(course) -> Roster | None:
    """The course's roster, or None when it has none (then the students are the folders of submitted/)."""
    path = course.roster_file
    return read(path) if path.is_file() else None


def install(course, source: Path) -> Path:
    """Check ``source`` and copy it to the course's roster file (0600: it holds personal data)."""
    from .course import write_private

    text = Path(source).read_bytes()
    read(Path(source))                       # validate before replacing anything
    dest = course.roster_file
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_private(dest, text)
    return dest


def class_list(course, roster: Roster | None = None) -> list[str]:
    """Everyone an export must list: the roster's students in its order, then anyone else who
    submitted or was graded (reported as not on the roster)."""
    roster = roster if roster is not None else load(course)
    ids = roster.ids if roster else []
    return ids + [s for s in course.students() if s not in set(ids)]
