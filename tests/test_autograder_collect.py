"""A real course's round trip: an LMS bulk download in, grades out in every platform's format.

Two simulated downloads of the same class of twenty — a Canvas submissions zip and a Moodle
"download all submissions" zip with its grading worksheet (in French, Paris time) — each with
renamed files, a resubmission, late submissions (within the grace period, penalised, capped),
an extension, two notebooks for one assignment, a file of nobody, a notebook of another
assignment, a student without a submission, a PDF and an archive entry trying to escape. Does
every roster student appear in every export format with the right score, lateness and status, and
is nothing that could not be placed silent?
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import stat
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from agtools import ASSIGNMENT, FULL, WRONG, blank, filled  # noqa: E402
from autograder import collect as collect_mod  # noqa: E402
from autograder import deadlines  # noqa: E402
from autograder.cli import main  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("autograder-collect")]

PARIS = deadlines.zone("Europe/Paris")
DUE = dt.datetime(2025, 10, 6, 23, 59, tzinfo=PARIS)
EXTENDED = dt.datetime(2025, 10, 9, 23, 59, tzinfo=PARIS)
TITLE = "Fixture: affine layer (4321)"
PARTIAL = FULL - agtools.POINTS["relu_forward"] - agtools.POINTS["softmax"]
HOUR = dt.timedelta(hours=1)

# id, first name, last name, what they hand in, the file name they gave it, submitted (Paris time)
CLASS = [
    ("s01", "Ada", "Lovelace", "good", "fixture_affine.ipynb", DUE - 30 * HOUR),
    ("s02", "Alan", "Turing", "partial", "affine.ipynb", DUE - 2 * HOUR),
    ("s03", "Grace", "Hopper", "blank", "affine-1.ipynb", DUE - 5 * HOUR),               # a resubmission
    ("s04", "Zoë", "Ångström", "good", "Affine Homework (2).ipynb", DUE + 36 * HOUR),    # 2 started days late
    ("s05", "Katherine", "Johnson", "good", "affine.ipynb", DUE + 100 * HOUR),            # 5 days: capped
    ("s06", "Edsger", "Dijkstra", "good", "affine.ipynb", DUE + dt.timedelta(minutes=5)),  # within the grace
    ("s07", "Barbara", "Liskov", "good", "affine.ipynb", DUE + 48 * HOUR),                # has an extension
    ("s08", "Donald", "Knuth", "two", "affine.ipynb", DUE - HOUR),                        # two notebooks
    ("s09", "John", "Backus", None, None, None),                                          # nothing
    ("s10", "Frances", "Allen", "good+other", "affine.ipynb", DUE - 3 * HOUR),           # + another assignment's
    ("s11", "Claude", "Shannon", "partial", "Untitled.ipynb", DUE - 4 * HOUR),
    ("s12", "Radia", "Perlman", "good", "affine (1).ipynb", DUE - 6 * HOUR),
    ("s13", "Leslie", "Lamport", "blank", "affine.ipynb", DUE - 7 * HOUR),
    ("s14", "Shafi", "Goldwasser", "partial", "homework.ipynb", DUE - 8 * HOUR),
    ("s15", "Tony", "Hoare", "good", "affine.ipynb", DUE - 9 * HOUR),
    ("s16", "Adele", "Goldberg", "good", "copy of affine.ipynb", DUE - 10 * HOUR),
    ("s17", "Robin", "Milner", "partial", "affine.ipynb", DUE - 11 * HOUR),
    ("s18", "Fran", "Bilas", "blank", "affine.ipynb", DUE - 12 * HOUR),
    ("s19", "Ken", "Thompson", "good", "lab.ipynb", DUE - 13 * HOUR),
    ("s20", "Jean", "Sammet", "good", "affine.ipynb", DUE - 14 * HOUR),
]
CONTENT = {"good": filled, "partial": lambda: filled(WRONG), "blank": blank}
# student -> (final score, status, late?) that every export must show; None score: left blank
EXPECTED = {
    "s04": (FULL * (1 - 0.4), "graded", True),
    "s05": (FULL * (1 - 0.5), "graded", True),
    "s06": (FULL, "graded", False),
    "s07": (FULL, "graded", False),
    "s08": (None, "not graded", False),
    "s09": (0.0, "missing", False),
}
for _sid, *_rest in CLASS:
    _work = _rest[2]
    if _sid not in EXPECTED:
        base = _work.split("+")[0]
        EXPECTED[_sid] = ({"good": FULL, "partial": PARTIAL, "blank": 0.0}[base], "graded", False)


def uid(sid: str) -> str:                      # Canvas user ids
    return str(7000 + int(sid[1:]))


def email(sid: str) -> str:
    return f"{sid}@uni.example.org"


def write_roster(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "first_name", "last_name", "email", "sis_id", "lms_id", "login_id", "section"])
        for sid, first, last, *_ in CLASS:
            w.writerow([sid, first, last, email(sid), f"2025{sid[1:]}", uid(sid), f"{first[0]}{last}".lower(),
                        "A" if int(sid[1:]) % 2 else "B"])
    return path


def make_course(root: Path):
    course = agtools.make_course(root, limits=agtools.FAST_LIMITS)
    agtools.add_written(course)
    toml = (root / "autograder.toml").read_text()
    toml += (f'\n[course]\ntimezone = "Europe/Paris"\n\n[assignments.{ASSIGNMENT}]\ndue = 2025-10-06T23:59:00\n'
             f'grace_minutes = 10\npenalty_per_day = 0.2\npenalty_cap = 0.5\nlms_name = "{TITLE}"\n'
             f'extensions = {{ s07 = 2025-10-09T23:59:00 }}\n')
    (root / "autograder.toml").write_text(toml)
    from autograder.course import Course

    return Course.open(root)


def notebook_bytes(kind: str) -> bytes:
    return json.dumps(CONTENT[kind]()).encode()


def other_assignment() -> bytes:
    return json.dumps(agtools.written_nb()).encode()


def canvas_zip(path: Path) -> Path:
    """Canvas: <lastfirst>[_LATE]_<user id>_<submission id>_<file name> at the root of the zip."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for sid, first, last, work, fname, when in CLASS:
            if work is None:
                continue
            key = (last + first).lower().replace("ö", "o").replace("ë", "e").replace("å", "a")
            late = "_LATE" if when > DUE else ""
            prefix = f"{key}{late}_{uid(sid)}_{90000 + int(sid[1:])}"
            if work == "two":
                z.writestr(f"{prefix}_affine.ipynb", notebook_bytes("good"))
                z.writestr(f"{prefix}_affine_final.ipynb", notebook_bytes("partial"))
                continue
            z.writestr(f"{prefix}_{fname}", notebook_bytes(work.split("+")[0]))
            if "+other" in work:
                z.writestr(f"{prefix}_written.ipynb", other_assignment())
        z.writestr("mallorynobody_66666_99999_affine.ipynb", notebook_bytes("good"))     # nobody on the roster
        z.writestr("lovelaceada_7001_90001_report.pdf", b"%PDF-1.4 not a notebook")
        z.writestr("../../escape_7002_90002_affine.ipynb", notebook_bytes("good"))
        link = zipfile.ZipInfo("turingalan_7002_90002_link.ipynb")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
    return path


def canvas_times(path: Path) -> Path:
    """Canvas's submissions API (GET /api/v1/courses/:id/assignments/:id/submissions), abridged."""
    rows = [{"user_id": int(uid(sid)), "submitted_at": when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "late": when > DUE} for sid, *_, when in CLASS if when is not None]
    path.write_text(json.dumps(rows))
    return path


FRENCH_DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
FRENCH_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
                 "novembre", "décembre"]


def french(when: dt.datetime) -> str:
    """Moodle's userdate() in French ('%A %d %B %Y, %H:%M'), in the downloading user's zone (Paris)."""
    w = when.astimezone(PARIS)
    return f"{FRENCH_DAYS[w.weekday()]} {w.day:02d} {FRENCH_MONTHS[w.month - 1]} {w.year}, {w.hour:02d}:{w.minute:02d}"


def moodle_zip(path: Path, worksheet: Path) -> tuple[Path, Path]:
    """Moodle: <Full Name>_<participant id>_assignsubmission_file_/<file>, and the grading worksheet."""
    sheet = [["Identifiant", "Nom complet", "Adresse de courriel", "Statut", "Note", "Note maximale",
              "La note peut être modifiée", "Dernière modification (travail remis)", "Dernière modification (note)",
              "Feedback par commentaires"]]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for sid, first, last, work, fname, when in CLASS:
            pid = 310000 + int(sid[1:])
            # s12 registered in Moodle with a private address: found by name instead
            address = "radia.private@mail.example" if sid == "s12" else email(sid)
            sheet.append([f"Participant {pid}", f"{first} {last}", address,
                          "Remis pour évaluation" if work else "Aucun travail remis", "", "9", "Oui",
                          french(when) if when else "-", "-", ""])
            if work is None:
                continue
            folder = f"{first} {last}_{pid}_assignsubmission_file_"
            if work == "two":
                z.writestr(f"{folder}/affine.ipynb", notebook_bytes("good"))
                z.writestr(f"{folder}/affine (copy).ipynb", notebook_bytes("good"))
                continue
            z.writestr(f"{folder}/{fname}", notebook_bytes(work.split("+")[0]))
            if "+other" in work:
                z.writestr(f"{folder}/written.ipynb", other_assignment())
        z.writestr("Mallory Nobody_399999_assignsubmission_file_/affine.ipynb", notebook_bytes("good"))
        z.writestr("Ada Lovelace_310001_assignsubmission_file_/notes.pdf", b"%PDF-1.4")
    with worksheet.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(sheet)
    return path, worksheet


def cli(course, *args) -> int:
    return main(["--course", str(course.root), *args])


def rows_by(path: Path, key: str, *, skip_points: bool = False) -> dict:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    if skip_points:
        assert rows[0][next(iter(rows[0]))].strip() == "Points Possible"
        rows = rows[1:]
    return {r[key]: r for r in rows}


def collected_and_graded(tmp_path_factory, lms: str):
    root = tmp_path_factory.mktemp(lms)
    course = make_course(root / "course")
    roster = write_roster(root / "roster.csv")
    if lms == "canvas":
        args = [str(canvas_zip(root / "submissions.zip")), "--roster", str(roster), "--assignment", ASSIGNMENT,
                "--times", str(canvas_times(root / "submissions.json"))]
    else:
        download, sheet = moodle_zip(root / "download.zip", root / "worksheet.csv")
        args = [str(download), "--roster", str(roster), "--assignment", ASSIGNMENT, "--worksheet", str(sheet),
                "--locale", "fr", "--timezone", "Europe/Paris"]
    assert cli(course, "collect", *args) == 0
    assert cli(course, "references", "--assignment", ASSIGNMENT, "--device", "cpu") == 0
    # s08 handed in two notebooks for one: graded once they remove one; exit 1 says so
    assert cli(course, "grade", "--workers", "2", "--no-progress") == 1
    return course


@pytest.fixture(scope="module")
def canvas_course(tmp_path_factory):
    return collected_and_graded(tmp_path_factory, "canvas")


@pytest.fixture(scope="module")
def moodle_course(tmp_path_factory):
    return collected_and_graded(tmp_path_factory, "moodle")


@pytest.fixture(params=["canvas", "moodle"])
def graded(request):
    return request.getfixturevalue(f"{request.param}_course")


def test_collect_places_every_notebook_by_its_cells_with_nbgraders_timestamp(graded):
    course = graded
    s11 = course.submission_dir("s11", ASSIGNMENT)
    assert sorted(p.name for p in s11.iterdir() if p.suffix == ".ipynb") == ["affine.ipynb"]     # was Untitled.ipynb
    stamp = (s11 / "timestamp.txt").read_text().strip()
    assert stamp.endswith(" UTC")
    submitted = dict((sid, when) for sid, *_, when in CLASS)["s11"]
    assert deadlines.read_timestamp(course, "s11", ASSIGNMENT) == submitted
    record = collect_mod.lms_record(course, "s11", ASSIGNMENT)
    assert record["files"] == {"affine.ipynb": "Untitled.ipynb"}
    # the notebook of another assignment handed in with s10's is not filed under it
    assert not course.submission_dir("s10", agtools.WRITTEN).exists()


def test_nothing_that_could_not_be_placed_is_silent(graded, capsys):
    course = graded
    logs = sorted(course.logs_dir.glob("collect-*.log"))
    text = logs[-1].read_text()
    assert "mallory" in text.lower() and "matches no student of the roster" in text
    assert "s09 fixture_affine" in text                                   # no submission
    assert "s08 fixture_affine: 2 notebooks for affine.ipynb" in text
    assert "of s10: handed in for fixture_affine but it is a notebook of fixture_written" in text
    assert "notes.pdf" in text or "report.pdf" in text
    kept = list((course.work / "unmatched").iterdir())
    assert any("allory" in p.name for p in kept)
    # grading says it too, and exports leave s08 blank (not 0) with the reason
    assert cli(course, "grade", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "s08: NOT GRADED" in out and "2 notebooks for affine.ipynb" in out


def test_canvas_archive_tricks_are_skipped_and_reported(canvas_course):
    text = sorted(canvas_course.logs_dir.glob("collect-*.log"))[-1].read_text()
    assert text.startswith("collected 20 notebooks of 19 students") and "(canvas)" in text.split("\n")[0]
    assert "../../escape_7002_90002_affine.ipynb: an unsafe path" in text
    assert "turingalan_7002_90002_link.ipynb: a symbolic link: skipped" in text
    assert not (canvas_course.work.parent / "escape_7002_90002_affine.ipynb").exists()
    assert not list(canvas_course.root.parent.glob("escape*"))


def check_student(sid: str, score: str):
    want = EXPECTED[sid][0]
    if want is None:
        assert score == "", (sid, score)
    else:
        assert float(score) == pytest.approx(want), (sid, score, want)


def test_long_export_has_every_roster_student_with_score_penalty_lateness_and_status(graded, tmp_path):
    out = tmp_path / "long.csv"
    assert cli(graded, "export", "--output", str(out)) == 0
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO(out.read_text())) if r["assignment"] == ASSIGNMENT}
    assert set(rows) == {sid for sid, *_ in CLASS}
    assert {r["assignment"] for r in csv.DictReader(io.StringIO(out.read_text()))} == {ASSIGNMENT}   # nothing not handed out
    for sid, (score, status, late) in EXPECTED.items():
        row = rows[sid]
        check_student(sid, row["score"])
        assert row["status"] == status, (sid, row["status"], row["message"])
        assert bool(row["late"]) == late, (sid, row["late"])
    assert float(rows["s04"]["raw_score"]) == FULL and float(rows["s04"]["late_penalty"]) == pytest.approx(0.4 * FULL)
    assert rows["s07"]["due"].startswith("2025-10-09T23:59")                            # the extension
    assert "2 notebooks" in rows["s08"]["message"]


def test_canvas_export_is_the_gradebook_import_format_with_every_student(graded, tmp_path):
    out = tmp_path / "canvas.csv"
    assert cli(graded, "export", "--format", "canvas", "--output", str(out)) == 0
    header = next(csv.reader(io.StringIO(out.read_text())))
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", TITLE]
    rows = rows_by(out, "ID", skip_points=True)
    assert set(rows) == {uid(sid) for sid, *_ in CLASS}
    assert rows[uid("s04")]["Student"] == "Ångström, Zoë"
    for sid in EXPECTED:
        check_student(sid, rows[uid(sid)][TITLE])


def test_moodle_export_matches_students_by_email_and_id_number(graded, tmp_path):
    out = tmp_path / "moodle.csv"
    assert cli(graded, "export", "--format", "moodle", "--output", str(out)) == 0
    rows = rows_by(out, "Email address")
    assert set(rows) == {email(sid) for sid, *_ in CLASS}
    for sid in EXPECTED:
        assert rows[email(sid)]["ID number"] == f"2025{sid[1:]}"
        check_student(sid, rows[email(sid)][TITLE])


def test_gradescope_export_has_email_sid_score_and_lateness(graded, tmp_path):
    out = tmp_path / "gradescope.csv"
    assert cli(graded, "export", "--format", "gradescope", "--output", str(out)) == 0
    rows = rows_by(out, "Email")
    assert set(rows) == {email(sid) for sid, *_ in CLASS}
    for sid, (_, _, late) in EXPECTED.items():
        check_student(sid, rows[email(sid)][TITLE])
        lateness = rows[email(sid)][f"{TITLE} - Lateness (H:M:S)"]
        assert (lateness not in ("", "0:00:00")) == late, (sid, lateness)
    assert rows[email("s04")][f"{TITLE} - Lateness (H:M:S)"] == "36:00:00"


def test_a_new_extension_changes_the_export_without_a_regrade(canvas_course, tmp_path):
    course = canvas_course
    config = course.root / "autograder.toml"
    original = config.read_text()
    before = course.result_path("s05", ASSIGNMENT).read_bytes()
    config.write_text(original.replace("extensions = { s07 = 2025-10-09T23:59:00 }",
                                       "extensions = { s07 = 2025-10-09T23:59:00, s05 = 2025-10-12T00:00:00 }"))
    try:
        out = tmp_path / "long.csv"
        assert cli(course, "export", "--output", str(out)) == 0
        row = {r["student"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}["s05"]
        assert float(row["score"]) == FULL and row["late"] == ""
        assert course.result_path("s05", ASSIGNMENT).read_bytes() == before
    finally:
        config.write_text(original)


def test_canvas_template_gives_the_exact_titles_and_identifiers(canvas_course, tmp_path):
    template = tmp_path / "canvas-export.csv"
    with template.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Chapter 0 (1111)",
                    "Fixture: affine layer (4321)", "Current Score"])
        w.writerow(["    Points Possible", "", "", "", "", "5", "9", "(read only)"])
        for sid, first, last, *_ in CLASS:
            w.writerow([f"{last}, {first}", uid(sid), f"2025{sid[1:]}", f"{first[0]}{last}".lower(), "Sec X",
                        "3", "", "50"])
    out = tmp_path / "import.csv"
    assert cli(canvas_course, "export", "--format", "canvas", "--template", str(template), "--output", str(out)) == 0
    header = next(csv.reader(io.StringIO(out.read_text())))
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", TITLE]     # only ours, nothing read-only
    rows = rows_by(out, "ID", skip_points=True)
    assert rows[uid("s01")]["Section"] == "Sec X"
    check_student("s01", rows[uid("s01")][TITLE])


def test_an_unknown_student_is_an_error_in_grade_and_in_its_dry_run(canvas_course, capsys):
    for extra in ([], ["--dry-run"]):
        assert cli(canvas_course, "grade", "--student", "nobody.here", "--no-progress", *extra) == 2
        assert "no student 'nobody.here'" in capsys.readouterr().err


# -- fast checks of the pieces -----------------------------------------------------------------------
def test_a_zip_bomb_costs_nothing(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("someone_1_2_affine.ipynb", b"0" * (64 << 20))       # 64 MiB of zeros, ~64 KiB compressed
    assert bomb.stat().st_size < 1 << 20
    entries = collect_mod.read_download(bomb, max_file_bytes=20 << 20, max_total_bytes=1 << 30)
    assert entries[0].data is None and "larger than 20 MiB" in entries[0].problem
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(5):
            z.writestr(f"someone_1_{i}_affine.ipynb", b"0" * (8 << 20))
    with pytest.raises(collect_mod.CollectError, match="more than 16 MiB"):
        collect_mod.read_download(bomb, max_file_bytes=20 << 20, max_total_bytes=16 << 20)


def test_an_entry_whose_header_lies_about_its_size_is_not_collected(tmp_path):
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a_1_2_x.ipynb", b"1" * 4096)
    data = bytearray(path.read_bytes())
    # declare 100 bytes in both headers while 4096 are stored
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22:local + 26] = (100).to_bytes(4, "little")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    entries = collect_mod.read_download(path, max_file_bytes=1024, max_total_bytes=1 << 20)
    assert entries[0].data is None and "cannot be read from the archive" in entries[0].problem


def test_moodle_dates_are_read_in_their_language_and_zone():
    paris = deadlines.zone("Europe/Paris")
    read = collect_mod._moodle_date
    assert read("Tuesday, 7 October 2025, 2:05 PM", paris, "en") == dt.datetime(2025, 10, 7, 14, 5, tzinfo=paris)
    assert read("mardi 07 octobre 2025, 14:05", paris, "fr") == dt.datetime(2025, 10, 7, 14, 5, tzinfo=paris)
    assert read("Dienstag, 7. Oktober 2025, 14:05", paris, "de") == dt.datetime(2025, 10, 7, 14, 5, tzinfo=paris)
    assert read("-", paris, "en") is None


def test_a_plain_folder_with_timestamps_is_collected_as_nbgrader_would(tmp_path):
    course = make_course(tmp_path / "course")
    download = tmp_path / "download"
    (download / "ada").mkdir(parents=True)
    (download / "ada" / "my work.ipynb").write_bytes(notebook_bytes("good"))
    (download / "ada" / "timestamp.txt").write_text("2025-10-06 20:00:00.000000 UTC\n")
    (download / "bob_affine.ipynb").write_bytes(notebook_bytes("partial"))
    (download / "ghost").mkdir()
    (download / "ghost" / "x.ipynb").symlink_to("/etc/passwd")
    rep = collect_mod.collect(course, download, roster=None)
    assert {(s, a, f) for s, a, f, *_ in rep.placed} == {("ada", ASSIGNMENT, "affine.ipynb")}
    assert any("bob_affine.ipynb" in u for u in rep.unmatched)          # no roster: only folders name students
    assert any("ghost/x.ipynb: a symbolic link" in p for p in rep.problems)
    assert deadlines.read_timestamp(course, "ada", ASSIGNMENT) == dt.datetime(2025, 10, 6, 20, 0,
                                                                            tzinfo=dt.timezone.utc)
    shutil.rmtree(download)


def test_nbgraders_gradebook_has_the_due_date_submission_times_and_extensions(canvas_course):
    from autograder.gradebook import open_gradebook

    utc = dt.timezone.utc
    with open_gradebook(canvas_course) as gb:
        assert gb.find_assignment(ASSIGNMENT).duedate == DUE.astimezone(utc).replace(tzinfo=None)
        late = gb.find_submission(ASSIGNMENT, "s04")
        assert late.timestamp == (DUE + 36 * HOUR).astimezone(utc).replace(tzinfo=None)
        assert late.total_seconds_late == pytest.approx(36 * 3600)
        extended = gb.find_submission(ASSIGNMENT, "s07")
        assert extended.extension == EXTENDED - DUE and extended.total_seconds_late == 0
        assert gb.find_student("s04").email == email("s04") and gb.find_student("s04").lms_user_id == uid("s04")


def test_a_plain_zip_names_students_by_any_roster_identifier_inside_its_wrapper_folder(tmp_path):
    course = make_course(tmp_path / "course")
    roster_path = write_roster(tmp_path / "roster.csv")
    from autograder import roster as roster_mod

    path = tmp_path / "download.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"week 5/{email('s01')}/homework.ipynb", notebook_bytes("good"))
        z.writestr("week 5/alovelace/notes.txt", b"not collected")
        z.writestr("week 5/tturing/hw.ipynb", notebook_bytes("partial"))          # nobody has that login
        z.writestr("week 5/s03_attempt2.ipynb", notebook_bytes("blank"))
    rep = collect_mod.collect(course, path, roster=roster_mod.read(roster_path))
    assert rep.lms == "folder"
    assert {(s, f) for s, _, f, *_ in rep.placed} == {("s01", "affine.ipynb"), ("s03", "affine.ipynb")}
    assert any("tturing/hw.ipynb" in u and "matches no student" in u for u in rep.unmatched)
    assert any("notes.txt: not a notebook" in u for u in rep.unmatched)
