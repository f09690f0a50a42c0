"""`python -m bench.attack` is `python -m bench attack`."""

import sys

from bench.attack.cli import main

sys.exit(main(sys.argv[1:]))
