"""Our worker on the psycopg adapter (LISTEN/NOTIFY); see ours.py."""

from __future__ import annotations

import sys

from bench.systems.ours import OursSystem

SYSTEM = OursSystem("postgres")

if __name__ == "__main__":
    sys.exit(SYSTEM.main(sys.argv[1:]))
