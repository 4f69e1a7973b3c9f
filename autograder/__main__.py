"""``python -m autograder`` — see autograder/README.md."""
import sys

from autograder.cli import main

if __name__ == "__main__":
    sys.exit(main())
