"""``python -m skdigits``: the command line."""

import sys

from .cli import main

if __name__ == "__main__":  # not when imported (pytest's doctest collection)
    sys.exit(main())
