"""nbgrader's configuration for this course: ``nbgrader export``, ``nbgrader db ...`` and the
formgrader (``python -m autograder formgrader``) work from the repository root.

The paths, the gradebook URL and the deadlines come from the autograder's own course settings
(``autograder.toml``), so both tools always agree. ``nbgrader autograde`` and ``nbgrader
generate_feedback`` are refused: this course grades with ``python -m autograder grade`` (sandboxed,
verdict outside the student's process) and ``feedback`` (no hidden tests in it).
"""
from autograder.formgrader import configure

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file
configure(c, __file__)
