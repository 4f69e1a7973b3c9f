"""``python -m bench [suite ...] [--threads N] [--repeats R] [--clock cpu|wall]``.

Suites (default: all): ``mlp`` (mlp_lib vs torch), ``grading`` (the autograder vs plain
``nbgrader autograde`` on real chapter notebooks), ``feedback`` (which mistakes the feedback names),
``book`` (cold and warm book builds, and the PDF). numpy's BLAS and
torch read their thread counts from the environment when they are loaded, so
``--threads N`` (default 1) sets OMP/OPENBLAS/MKL_NUM_THREADS and re-executes
this command before anything imports them; torch.set_num_threads(N) follows.
"""
import os
import sys

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _requested_threads(argv) -> int:
    for i, arg in enumerate(argv):
        value = None
        if arg == "--threads" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--threads="):
            value = arg.split("=", 1)[1]
        if value is not None:
            if not value.isdigit() or int(value) < 1:
                sys.exit(f"--threads must be a positive integer, got {value!r}")
            return int(value)
    return 1


_threads = _requested_threads(sys.argv[1:])
if any(os.environ.get(var) != str(_threads) for var in _THREAD_VARS):
    # Must happen before numpy/torch load: re-exec with the thread variables set.
    env = dict(os.environ, **{var: str(_threads) for var in _THREAD_VARS})
    os.execve(sys.executable, [sys.executable, "-m", "bench", *sys.argv[1:]], env)

import argparse  # noqa: E402

SUITES = ("mlp", "grading", "feedback", "book")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks, printed as ratios against the baseline (torch, plain nbgrader) "
                    "measured in the same run.")
    parser.add_argument("suites", nargs="*", metavar="suite",
                        help=f"which benchmarks to run: {', '.join(SUITES)} (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="threads for numpy's BLAS and torch (default 1)")
    parser.add_argument("--repeats", type=int, default=15,
                        help="interleaved rounds per measurement (at least 5); the median is reported with its spread")
    parser.add_argument("--clock", choices=("wall", "cpu"), default=None,
                        help="process CPU time (the default with one thread: on a shared machine it leaves out the "
                             "time other processes hold the CPU) or wall clock (the default with more threads)")
    args = parser.parse_args(argv)
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; choose from {list(SUITES)}")
    if args.repeats < 5:
        parser.error("--repeats must be at least 5 (a median of fewer says little, and has no spread)")
    if args.clock is None:
        args.clock = "cpu" if args.threads == 1 else "wall"
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu counts every thread's time: use it with --threads 1")

    import torch

    torch.set_num_threads(args.threads)
    for suite in args.suites or SUITES:
        if suite == "mlp":
            from bench import mlp

            mlp.run(threads=args.threads, repeats=args.repeats, clock=args.clock)
        elif suite == "grading":
            from bench import grading

            grading.run()  # prints its own table
        elif suite == "feedback":
            from bench import feedback

            feedback.run()
        elif suite == "book":
            from bench import book

            book.run(pdf=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
