"""What runs inside a student's job — the trust boundary of the grader, made visible in the tree.

Everything in this subpackage executes in the process tree that runs student code (or builds it),
and it is the only part of the project that job can see: the sealed filesystem holds the
interpreter, numpy and this folder. It imports the standard library and numpy only.

* :mod:`.launch` — as root, builds the job's namespaces, filesystem, cgroups and uid, then starts the kernel;
* :mod:`.kernel` — runs the setup and the student's cells and records each graded part;
* :mod:`.harness` — calls the student's functions on the grading inputs and writes the outputs;
* :mod:`.shell` — runs a cell, and answers the ``get_ipython()`` calls magics were rewritten into.

Nothing written here is believed by the grader except the output arrays, which it judges against
references this process never holds.
"""
