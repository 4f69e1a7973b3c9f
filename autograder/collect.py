"""``collect``: a learning platform's bulk download -> ``submitted/<student>/<assignment>/<notebook>.ipynb``.

Sources (``--lms``, detected from the file names when not given):

* **Canvas** "Download submissions" zip: files at its root named
  ``<lastfirst>[_LATE]_<user id>_<submission id>_<file name>`` (Canvas renames a re-uploaded
  file ``name-1.ipynb``). The user id is the roster's ``lms_id``; the zip holds no submission
  times (its entries carry the time the zip was made), so times come from ``--times`` (Canvas's
  submissions API JSON, or a CSV), and ``_LATE`` is recorded as Canvas's own verdict.
* **Moodle** "Download all submissions" zip: folders ``<Full Name>_<participant id>_assignsubmission_file_/``
  (or files with that prefix). Participant ids are per assignment: the grading worksheet CSV
  (``--worksheet``) maps them to e-mail addresses and submission times, which Moodle writes in the
  downloading user's language (``--locale``) and time zone (``--timezone``).
* **A plain folder** (or zip): ``<student>/.../*.ipynb`` or ``<student>_<anything>.ipynb``, where
  ``<student>`` is any roster identifier (id, e-mail, SIS id, login, name); a ``timestamp.txt``
  beside the notebook is read as nbgrader does.

Each notebook is matched to its assignment and source notebook by its cells
(:mod:`autograder.matching`), whatever its name. Archives are read, never extracted: entry names
are checked (no absolute paths, ``..``, links), each notebook is read up to the notebook size limit
and the whole download up to ``--max-total-mb``, so a zip bomb costs nothing. Everything that
could not be placed — files matching no notebook or nobody, roster students without a
submission, two notebooks for one assignment — is printed and written to a log; notebooks that
match no assignment are kept in ``WORK/unmatched/`` for the instructor.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import deadlines, matching
from .course import write_private
from .roster import Roster

SIDECAR = "submission.json"
CANVAS_NAME = re.compile(r"^(?P<name>[^_/]+?)(?P<late>_LATE)?_(?P<uid>\d+)_(?P<sub>\d+)_(?P<file>.+)$")
MOODLE_NAME = re.compile(r"^(?P<name>.+?)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.*)$")
RESUBMISSION = re.compile(r"-\d+(?=\.[^.]+$)")
DEFAULT_MAX_TOTAL_MB = 2048
MAX_ENTRIES = 100_000


class CollectError(ValueError):
    """The download cannot be collected at all (printed as one error line)."""


# -- reading a download without extracting it -------------------------------------------------------
@dataclass
class Entry:
    """One file of the download: its path inside it (posix) and its bytes (notebooks and CSVs only)."""

    name: str
    data: bytes | None = None
    problem: str = ""                  # why it was skipped (unsafe name, link, too large...)


def _safe_name(name: str) -> str | None:
    """The entry's relative posix path, or None when it could escape a folder if extracted."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or any("\x00" in p for p in parts):
        return None
    return "/".join(parts)


def _wanted(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".ipynb") or lower.endswith(".csv") or lower.endswith("/timestamp.txt") \
        or lower == "timestamp.txt"


def read_download(path: Path, *, max_file_bytes: int, max_total_bytes: int) -> list[Entry]:
    """Every file of a zip or folder, reading only notebooks, CSVs and timestamp files (capped)."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, max_file_bytes, max_total_bytes)
    if not zipfile.is_zipfile(path):
        raise CollectError(f"{path} is neither a folder nor a zip archive")
    return _read_zip(path, max_file_bytes, max_total_bytes)


def _read_zip(path: Path, max_file: int, max_total: int) -> list[Entry]:
    entries, total = [], 0
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise CollectError(f"{path.name} has {len(infos)} entries (more than {MAX_ENTRIES}): not a submissions download")
        for info in infos:
            if info.is_dir():
                continue
            name = _safe_name(info.filename)
            if name is None:
                entries.append(Entry(info.filename, problem="an unsafe path (absolute or with '..'): skipped"))
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                entries.append(Entry(name, problem="a symbolic link: skipped"))
                continue
            if not _wanted(name):
                entries.append(Entry(name))
                continue
            if info.file_size > max_file:
                entries.append(Entry(name, problem=f"larger than {max_file >> 20} MiB: skipped"))
                continue
            try:
                with zf.open(info) as fh:
                    data = fh.read(max_file + 1)       # never trust the header's size
            except (zipfile.BadZipFile, RuntimeError, OSError, NotImplementedError) as exc:
                entries.append(Entry(name, problem=f"cannot be read from the archive ({exc}): skipped"))
                continue
            if len(data) > max_file:
                entries.append(Entry(name, problem=f"larger than {max_file >> 20} MiB: skipped"))
                continue
            total += len(data)
            if total > max_total:
                raise CollectError(f"{path.name} unpacks to more than {max_total >> 20} MiB of notebooks "
                                   "(raise --max-total-mb if this is a real class)")
            entries.append(Entry(name, data))
    return entries


def _read_folder(root: Path, max_file: int, max_total: int) -> list[Entry]:
    entries, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            full = Path(dirpath) / fname
            name = full.relative_to(root).as_posix()
            if fname.startswith("."):
                continue
            if full.is_symlink():
                entries.append(Entry(name, problem="a symbolic link: skipped"))
                continue
            if not _wanted(name):
                entries.append(Entry(name))
                continue
            if full.stat().st_size > max_file:
                entries.append(Entry(name, problem=f"larger than {max_file >> 20} MiB: skipped"))
                continue
            data = full.read_bytes()
            total += len(data)
            if total > max_total:
                raise CollectError(f"{root} holds more than {max_total >> 20} MiB of notebooks")
            entries.append(Entry(name, data))
    return entries


# -- who submitted what, and when ------------------------------------------------------------------------
@dataclass
class Submitted:
    """One notebook of the download, attributed to a student."""

    entry: str                              # path inside the download
    original: str                           # the file name the student gave it
    student: str | None = None
    lms_key: str = ""                       # how the platform named the student (for messages)
    submitted_at: dt.datetime | None = None
    lms_late: bool = False
    data: bytes = b""


def detect_format(entries: list[Entry]) -> str:
    names = [e.name for e in entries if e.name.lower().endswith(".ipynb") and not e.problem]
    if any("_assignsubmission_" in n for n in names):
        return "moodle"
    if names and all("/" not in n for n in names) and sum(bool(CANVAS_NAME.match(n)) for n in names) * 2 > len(names):
        return "canvas"
    return "folder"


def _canvas(entries, roster: Roster, times: dict) -> tuple[list[Submitted], list[str]]:
    out, problems = [], []
    for e in entries:
        if e.data is None or not e.name.lower().endswith(".ipynb"):
            continue
        base = PurePosixPath(e.name).name
        m = CANVAS_NAME.match(base)
        if not m:
            problems.append(f"{e.name}: not a Canvas submission file name (<name>_<user id>_<submission id>_<file>)")
            out.append(Submitted(e.name, base, data=e.data))
            continue
        student = roster.find(lms_id=m["uid"]) or roster.find(name=m["name"])
        sub = Submitted(e.name, RESUBMISSION.sub("", m["file"]), student=student.id if student else None,
                        lms_key=f"Canvas user {m['uid']} ({m['name']})", lms_late=bool(m["late"]), data=e.data)
        sub.submitted_at = _time_for(times, student, m["uid"])
        out.append(sub)
    return out, problems


def _moodle(entries, roster: Roster, worksheet: dict) -> tuple[list[Submitted], list[str]]:
    out, problems = [], []
    for e in entries:
        if e.data is None or not e.name.lower().endswith(".ipynb"):
            continue
        parts = e.name.split("/")
        at = next((i for i, part in enumerate(parts) if MOODLE_NAME.match(part)), None)
        if at is None:
            problems.append(f"{e.name}: not in a Moodle submission folder (<Full Name>_<id>_assignsubmission_file_)")
            out.append(Submitted(e.name, parts[-1], data=e.data))
            continue
        m = MOODLE_NAME.match(parts[at])
        original = m["file"] if at == len(parts) - 1 else parts[-1]     # flat download: the prefix is in the name
        row = worksheet.get(m["pid"], {})
        student = roster.find(email=row.get("email", ""), sis_id=row.get("idnumber", ""))
        if student is None and m["name"].strip().lower() != "participant":
            student = roster.find(name=row.get("name") or m["name"])
        sub = Submitted(e.name, original, student=student.id if student else None,
                        lms_key=f"Moodle participant {m['pid']} ({row.get('name') or m['name']})", data=e.data)
        sub.submitted_at = row.get("submitted")
        out.append(sub)
    return out, problems


def _folder(entries, roster: Roster | None, times: dict, tz) -> tuple[list[Submitted], list[str]]:
    out, problems = [], []
    stamps = {}
    for e in entries:
        if e.data is not None and PurePosixPath(e.name).name == deadlines.TIMESTAMP_FILE:
            try:
                stamps[str(PurePosixPath(e.name).parent)] = deadlines.parse_time(e.data.decode().strip(), tz)
            except (ValueError, UnicodeDecodeError):
                problems.append(f"{e.name}: not a readable time (ignored)")
    notebooks = [e for e in entries if e.data is not None and e.name.lower().endswith(".ipynb")]
    wrapper = _common_top_folder([e.name for e in notebooks])
    for e in notebooks:
        parts = e.name.split("/")[wrapper:]
        key, student = _folder_student(parts, roster)
        sub = Submitted(e.name, parts[-1], student=student, lms_key=key, data=e.data)
        folder = str(PurePosixPath(e.name).parent)
        sub.submitted_at = stamps.get(folder) or _time_for(times, roster.by_id.get(student) if roster and student
                                                          else None, key)
        out.append(sub)
    return out, problems


def _common_top_folder(names: list[str]) -> int:
    """1 when every file sits in one top folder that also holds sub-folders (a zip's wrapper), else 0."""
    parts = [n.split("/") for n in names]
    if len(parts) > 1 and all(len(p) > 2 for p in parts) and len({p[0] for p in parts}) == 1:
        return 1
    return 0


def _folder_student(parts: list[str], roster: Roster | None) -> tuple[str, str | None]:
    """(how the download names the student, roster id or None). Without a roster, the top folder is
    the student; with one, the first folder or file-name prefix that names a roster student."""
    from .roster import STUDENT_ID

    folders = parts[:-1]
    if roster is None:
        if folders:
            return folders[0], folders[0] if STUDENT_ID.match(folders[0]) else None
        return parts[-1], None
    pieces = re.split(r"[_\- ]", PurePosixPath(parts[-1]).stem)
    candidates = folders + ["_".join(pieces[:i]) for i in range(len(pieces) - 1, 0, -1)]
    for key in candidates:
        found = roster.find_any(key)
        if found:
            return key, found.id
    return (candidates[0] if candidates else parts[-1]), None


def _time_for(times: dict, student, lms_key: str) -> dt.datetime | None:
    if student is not None:
        for key in (student.id, student.lms_id, student.email.lower(), student.sis_id, student.login_id):
            if key and key in times:
                return times[key]
    return times.get(lms_key)


# -- metadata files ---------------------------------------------------------------------------------------
def read_times(path: Path, tz) -> dict:
    """{student key: aware datetime} from Canvas's submissions API JSON (``user_id``, ``submitted_at``)
    or a CSV with a student column (id, email, sis_id, lms_id, login_id or user_id) and a time column
    (``submitted``/``submitted_at``/``timestamp``)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    times = {}
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CollectError(f"{path}: not JSON ({exc})") from None
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and row.get("submitted_at") and row.get("user_id") is not None:
                times[str(row["user_id"])] = deadlines.parse_time(str(row["submitted_at"]), tz)
        return times
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    key_col = next((h for h in header if h.strip().lower() in ("id", "student", "email", "sis_id", "lms_id",
                                                                "login_id", "user_id")), None)
    time_col = next((h for h in header if h.strip().lower() in ("submitted", "submitted_at", "timestamp")), None)
    if key_col is None or time_col is None:
        raise CollectError(f"{path}: needs a student column (id, email, sis_id, lms_id, login_id, user_id) "
                           "and a time column (submitted, submitted_at, timestamp)")
    for row in reader:
        if row.get(key_col) and row.get(time_col):
            key = row[key_col].strip()
            times[key.lower() if "@" in key else key] = deadlines.parse_time(row[time_col].strip(), tz)
    return times


def read_worksheet(data: str, *, tz, locale: str = "en") -> dict:
    """{participant id: {"name", "email", "idnumber", "submitted"}} from Moodle's grading worksheet.

    Its headers and dates are in the downloading user's language: the participant id is the
    number ending the first column ("Participant 123456"), the e-mail the column of addresses,
    the submission time the first column after the name holding dates (``locale``, ``tz``)."""
    rows = list(csv.reader(io.StringIO(data)))
    if len(rows) < 2:
        return {}
    header = [h.strip().lower() for h in rows[0]]
    body = [r + [""] * (len(header) - len(r)) for r in rows[1:] if any(c.strip() for c in r)]
    email_col = _column(header, body, ("email address", "email"), lambda v: "@" in v)
    name_col = _column(header, body, ("full name", "name"), None, default=1)
    id_col = _column(header, body, ("id number", "idnumber"), None)
    submitted_col = next((i for i, h in enumerate(header) if "submission" in h and "modified" in h), None)
    if submitted_col is None:
        submitted_col = next((i for i in range(2, len(header))
                              if any(_moodle_date(r[i], tz, locale) for r in body)), None)
    out = {}
    for r in body:
        m = re.search(r"(\d+)\s*$", r[0])
        if not m:
            continue
        out[m.group(1)] = {
            "name": r[name_col].strip() if name_col is not None else "",
            "email": r[email_col].strip() if email_col is not None else "",
            "idnumber": r[id_col].strip() if id_col is not None else "",
            "submitted": _moodle_date(r[submitted_col], tz, locale) if submitted_col is not None else None,
        }
    return out


def _column(header, body, names, looks_like, default=None):
    for i, h in enumerate(header):
        if h in names:
            return i
    if looks_like is not None:
        for i in range(len(header)):
            values = [r[i].strip() for r in body if r[i].strip()]
            if values and all(looks_like(v) for v in values):
                return i
    return default


def _moodle_date(text: str, tz, locale: str) -> dt.datetime | None:
    """A date as Moodle's userdate() writes it ("Tuesday, 7 October 2025, 11:42 PM", in any language)."""
    text = text.strip()
    if not text or text == "-" or not re.search(r"\d", text):
        return None
    months, periods = _calendar_words(locale)
    words = re.findall(r"[^\W\d_]+\.?", text.lower())
    month = next((months[w.rstrip(".")] for w in words if w.rstrip(".") in months), None)
    numbers = re.findall(r"\d+", text)
    clock = re.search(r"(\d{1,2})\s*[:h.]\s*(\d{2})", text)
    year = next((int(n) for n in numbers if len(n) == 4), None)
    if month is None or year is None or clock is None:
        return None
    before_clock = text[:clock.start()]
    day_candidates = [int(n) for n in re.findall(r"\d+", before_clock) if len(n) <= 2]
    if not day_candidates:
        return None
    hour, minute = int(clock.group(1)), int(clock.group(2))
    after = text[clock.end():].lower()
    if any(p in after for p in periods["pm"]) and hour < 12:
        hour += 12
    elif any(p in after for p in periods["am"]) and hour == 12:
        hour = 0
    try:
        return dt.datetime(year, month, day_candidates[0], hour, minute, tzinfo=tz)
    except ValueError:
        return None


def _calendar_words(locale: str):
    from babel.dates import get_month_names, get_period_names

    months = {}
    for width in ("wide", "abbreviated"):
        for context in ("format", "stand-alone"):
            for number, name in get_month_names(width, context, locale=locale).items():
                months[name.lower().rstrip(".")] = number
    for number, name in get_month_names("wide", locale="en").items():
        months.setdefault(name.lower(), number)
        months.setdefault(name.lower()[:3], number)
    names = get_period_names(locale=locale)
    periods = {"am": {"am", "a.m."} | {str(names.get("am", "am")).lower()},
               "pm": {"pm", "p.m."} | {str(names.get("pm", "pm")).lower()}}
    return months, periods


# -- the command ---------------------------------------------------------------------------------------------
@dataclass
class CollectReport:
    source: str
    lms: str
    placed: list = field(default_factory=list)        # (student, assignment, notebook file, original, late text)
    unmatched: list = field(default_factory=list)     # messages: files we could not place
    without_submission: list = field(default_factory=list)   # (student, assignment)
    ambiguous: list = field(default_factory=list)     # messages: two notebooks for one
    problems: list = field(default_factory=list)      # other messages (metadata, names)
    log: Path | None = None

    def lines(self) -> list[str]:
        students = {p[0] for p in self.placed}
        out = [f"collected {len(self.placed)} notebooks of {len(students)} students from {self.source} ({self.lms})"]
        late = [p for p in self.placed if p[4]]
        for title, items in (("late", [f"{s} {a}: {text}" for s, a, _, _, text in late]),
                             ("two notebooks for one assignment (not graded until one is removed)", self.ambiguous),
                             ("could not be placed", self.unmatched),
                             ("no submission in this download", [f"{s} {a}" for s, a in self.without_submission]),
                             ("other problems", self.problems)):
            if items:
                out.append(f"{title}: {len(items)}")
                out += [f"  {item}" for item in items]
        return out


def collect(course, source: Path, *, roster: Roster | None, lms: str | None = None, assignment: str | None = None,
            worksheet: Path | None = None, times: Path | None = None, timezone: str | None = None,
            locale: str = "en", max_total_mb: int = DEFAULT_MAX_TOTAL_MB) -> CollectReport:
    source = Path(source)
    if not source.exists():
        raise CollectError(f"no such file or folder: {source}")
    if assignment is not None and assignment not in course.assignments():
        raise CollectError(f"unknown assignment {assignment!r} (known: {', '.join(course.assignments())})")
    tz = deadlines.zone(timezone) if timezone else deadlines.course_zone(course)
    entries = read_download(source, max_file_bytes=course.limits.max_notebook_mb << 20,
                            max_total_bytes=max_total_mb << 20)
    lms = lms or detect_format(entries)
    report = CollectReport(source=str(source), lms=lms)
    report.problems += [f"{e.name}: {e.problem}" for e in entries if e.problem]
    report.unmatched += [f"{e.name}: not a notebook (not collected)" for e in entries
                         if e.data is None and not e.problem and not e.name.lower().endswith(".ipynb")
                         and not e.name.lower().endswith(".csv")]
    time_table = read_times(times, tz) if times else {}
    if lms in ("canvas", "moodle") and roster is None:
        raise CollectError(f"a {lms} download names students by the platform's ids: give the class list "
                           "(--roster roster.csv, see autograder/README.md)")
    if lms == "canvas":
        subs, problems = _canvas(entries, roster, time_table)
    elif lms == "moodle":
        sheet_text = Path(worksheet).read_text(encoding="utf-8-sig") if worksheet else _inner_worksheet(entries)
        if sheet_text is None:
            report.problems.append("no grading worksheet (--worksheet): students are matched by name only and "
                                   "submission times are unknown")
        sheet = read_worksheet(sheet_text, tz=tz, locale=locale) if sheet_text else {}
        subs, problems = _moodle(entries, roster, sheet)
    elif lms == "folder":
        subs, problems = _folder(entries, roster, time_table, tz)
    else:
        raise CollectError(f"unknown --lms {lms!r} (canvas, moodle or folder)")
    report.problems += problems
    _place(course, subs, report, assignment=assignment, lms=lms, roster=roster)
    report.log = write_log(course, "collect", report.lines())
    return report


def _inner_worksheet(entries) -> str | None:
    for e in entries:
        if e.data is not None and e.name.lower().endswith(".csv"):
            return e.data.decode("utf-8-sig", errors="replace")
    return None


def _place(course, subs: list[Submitted], report: CollectReport, *, assignment, lms, roster) -> None:
    """Identify each notebook, group by student and assignment, and write ``submitted/``."""
    groups: dict[tuple[str, str], list[tuple[Submitted, str]]] = {}
    max_bytes = course.limits.max_notebook_mb << 20
    for sub in subs:
        if sub.student is None:
            who = sub.lms_key or "nobody"
            why = (f"matches no student of the roster ({who})" if roster is not None else
                   f"names no student ({who}): without a roster, put each student's files in a folder named "
                   "after them")
            _keep_unmatched(course, sub, why, report)
            continue
        try:
            nb = json.loads(sub.data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            _keep_unmatched(course, sub, f"of {sub.student}: not notebook JSON", report)
            continue
        if len(sub.data) > max_bytes:
            _keep_unmatched(course, sub, f"of {sub.student}: too large", report)
            continue
        match = matching.identify(nb, course)
        if not match.found:
            _keep_unmatched(course, sub, f"of {sub.student}: {match.reason}", report)
            continue
        if assignment is not None and match.assignment != assignment:
            _keep_unmatched(course, sub, f"of {sub.student}: handed in for {assignment} but it is a notebook of "
                                         f"{match.assignment}", report)
            continue
        groups.setdefault((sub.student, match.assignment), []).append((sub, match.notebook))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for (student, name), items in sorted(groups.items()):
        _write_submission(course, student, name, items, report, lms=lms, stamp=stamp)
    assignments = [assignment] if assignment else sorted({a for _, a in groups})
    everyone = roster.ids if roster is not None else []
    for a in assignments:
        for student in everyone:
            if (student, a) not in groups:
                report.without_submission.append((student, a))


def _write_submission(course, student, assignment, items, report, *, lms, stamp) -> None:
    folder = course.submission_dir(student, assignment)
    by_notebook: dict[str, list[Submitted]] = {}
    for sub, notebook in items:
        by_notebook.setdefault(notebook, []).append(sub)
    # a new download replaces the student's earlier notebooks for this assignment (kept aside)
    if folder.is_dir():
        old = [p for p in folder.iterdir() if p.is_file() and (p.suffix == ".ipynb" or p.name in
                                                                 (deadlines.TIMESTAMP_FILE, SIDECAR))]
        if old:
            aside = folder / ".replaced" / stamp
            aside.mkdir(parents=True, exist_ok=True)
            for p in old:
                os.replace(p, aside / p.name)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for notebook, subs in sorted(by_notebook.items()):
        if len(subs) == 1:
            target = f"{notebook}.ipynb"
            write_private(folder / target, subs[0].data)
            files[target] = subs[0].original
            continue
        names = []
        for i, sub in enumerate(subs):
            target = _unique_name(sub.original, i)
            write_private(folder / target, sub.data)
            files[target] = sub.original
            names.append(target)
        report.ambiguous.append(f"{student} {assignment}: {len(subs)} notebooks for {notebook}.ipynb "
                                f"({', '.join(names)})")
    times = [s.submitted_at for s, _ in items if s.submitted_at is not None]
    submitted = max(times) if times else None
    if submitted is not None:
        deadlines.write_timestamp(folder, submitted)
    lms_late = any(s.lms_late for s, _ in items)
    write_private(folder / SIDECAR, json.dumps({
        "lms": lms, "files": files, "lms_late": lms_late, "platform_name": items[0][0].lms_key,
        "collected": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}, indent=1).encode())
    text = deadlines.lateness(course, student, assignment).describe()
    for target, original in files.items():
        report.placed.append((student, assignment, target, original, text))


def _unique_name(original: str, index: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePosixPath(original).stem)[:80] or "notebook"
    return f"{stem}.{index + 1}.ipynb"


def _keep_unmatched(course, sub: Submitted, why: str, report: CollectReport) -> None:
    """A notebook nobody could place: kept under WORK/unmatched/ and reported."""
    folder = course.work / "unmatched"
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", sub.entry)[-150:]
    write_private(folder / safe, sub.data)
    report.unmatched.append(f"{sub.entry}: {why} (kept in {folder.name}/{safe})")


def write_log(course, command: str, lines: list[str]) -> Path:
    """WORK/logs/<command>-<time>.log with these lines; returns its path."""
    folder = course.logs_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    write_private(path, ("\n".join(lines) + "\n").encode())
    return path


def lms_record(course, student: str, assignment: str) -> dict:
    """What ``collect`` recorded about a submission (platform, original file names, the platform's
    late flag), or {}."""
    path = course.submission_dir(student, assignment) / SIDECAR
    if not path.is_file() or path.is_symlink():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

