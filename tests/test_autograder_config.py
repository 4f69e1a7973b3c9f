"""Roster and deadline settings: what an instructor writes, and the one-line errors for mistakes."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import agtools  # noqa: E402
from autograder import deadlines, roster  # noqa: E402
from autograder.cli import main  # noqa: E402
from autograder.course import Course  # noqa: E402


@pytest.fixture
def course_dir(tmp_path):
    agtools.make_course(tmp_path / "course")
    return tmp_path / "course"


def configure(root: Path, text: str) -> Course:
    (root / "autograder.toml").write_text(text)
    return Course.open(root)


def test_deadline_policy_penalises_started_days_after_the_grace_with_a_cap(course_dir):
    course = configure(course_dir, '[course]\ntimezone = "America/New_York"\n\n[assignments.fixture_affine]\n'
                                   'due = "2025-03-08 23:59"\ngrace_minutes = 30\npenalty_per_day = 0.25\n'
                                   'penalty_cap = 0.6\nextensions = { bob = 2025-03-12 }\n')
    policy = deadlines.policy(course, "fixture_affine")
    ny = deadlines.zone("America/New_York")
    assert policy.due == dt.datetime(2025, 3, 8, 23, 59, tzinfo=ny)
    assert not policy.lateness("ada", policy.due + dt.timedelta(minutes=29)).late
    one = policy.lateness("ada", policy.due + dt.timedelta(minutes=31))
    assert one.late and one.days == 1 and one.penalty_fraction == 0.25
    assert policy.lateness("ada", policy.due + dt.timedelta(days=2, hours=1)).penalty_fraction == 0.6   # capped
    # a date alone is the end of that day, in the course's zone (across a DST change)
    assert policy.due_for("bob") == dt.datetime(2025, 3, 12, 23, 59, 59, tzinfo=ny)
    assert not policy.lateness("bob", policy.due + dt.timedelta(days=3)).late


def test_nbgraders_timestamp_format_round_trips(tmp_path):
    moment = dt.datetime(2025, 10, 6, 21, 30, 5, 123000, tzinfo=deadlines.zone("Europe/Paris"))
    deadlines.write_timestamp(tmp_path, moment)
    text = (tmp_path / "timestamp.txt").read_text().strip()
    assert text == "2025-10-06 19:30:05.123000 UTC"
    from nbgrader.utils import parse_utc

    assert parse_utc(text) == moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    assert deadlines.parse_time(text, dt.timezone.utc) == moment


@pytest.mark.parametrize("toml, message", [
    ("[assignments.fixture_affine]\ndue = \"someday\"\n", "cannot read the date 'someday'"),
    ("[assignments.fixture_affine]\npenalty_per_dya = 0.1\n", "unknown keys ['penalty_per_dya']"),
    ("[assignments.fixture_affine]\npenalty_per_day = 10\n", "fractions in [0, 1]"),
    ("[course]\ntimezone = \"Mars/Olympus\"\n", "unknown time zone 'Mars/Olympus'"),
    ("[course]\nrooster = \"x.csv\"\n", "unknown [course] keys ['rooster']"),
    ("[assignments.fixture_afine]\ndue = 2025-01-01\n", "[assignments.fixture_afine] names no assignment"),
])
def test_configuration_mistakes_are_one_line_errors(course_dir, capsys, toml, message):
    (course_dir / "autograder.toml").write_text(toml)
    assert main(["--course", str(course_dir), "export"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ("name,email\nAda,a@x\n", "needs an 'id' column"),
    ("id,emial\nada,a@x\n", "unknown columns ['emial']"),
    ("id\nada\nada\n", "'ada' appears twice"),
    ("id\n../etc\n", "must be letters, digits"),
    ("id,email\nada,a@x\nbob,A@x\n", "email 'A@x' appears twice"),
])
def test_roster_mistakes_are_named(text, message):
    with pytest.raises(roster.RosterError, match=message.replace("[", r"\[").replace("(", r"\(")):
        roster.parse(text)


def test_roster_finds_students_by_any_identifier_and_by_name_in_either_order():
    r = roster.parse("id,first_name,last_name,email,sis_id,lms_id,login_id\n"
                     "ada,Zoë,Ångström,Zoe@Uni.org,2025001,7001,zangstrom\n"
                     "bob,Bob,Smith,bob@uni.org,2025002,7002,bsmith\n"
                     "bob2,Bob,Smith,bob2@uni.org,2025003,7003,bsmith2\n")
    assert r.find(lms_id="7001").id == "ada" and r.find(email="zoe@uni.org").id == "ada"
    assert r.find(name="angstromzoe").id == "ada" and r.find(name="Zoe Angstrom").id == "ada"
    assert r.find(name="Bob Smith") is None                       # two of them: never guessed
    assert r.find_any("zangstrom").id == "ada"
    assert r.by_id["ada"].sortable_name == "Ångström, Zoë"


def test_collect_with_a_bad_roster_is_a_one_line_error(course_dir, tmp_path, capsys):
    bad = tmp_path / "roster.csv"
    bad.write_text("student,mail\n")
    assert main(["--course", str(course_dir), "collect", str(tmp_path), "--roster", str(bad)]) == 2
    assert "needs an 'id' column" in capsys.readouterr().err
