"""Trusted autograding on top of nbgrader: ``python -m autograder --help``; the format is in autograder/README.md.

The student's code runs in a confined process that only hands outputs back; comparison, scoring
and feedback happen in the grader. This package is imported inside that process too
(:mod:`autograder.inside.harness`, :mod:`autograder.kernel`), so importing it must stay cheap: nothing
here imports torch, nbgrader or IPython.
"""
__version__ = "0.1.0"
