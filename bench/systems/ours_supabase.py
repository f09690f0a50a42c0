"""Our worker on supabase-py (Realtime wake-ups, REST RPCs through the gateway); see ours.py."""

from __future__ import annotations

import sys

from bench.systems.ours import OursSystem

SYSTEM = OursSystem("supabase")

if __name__ == "__main__":
    sys.exit(SYSTEM.main(sys.argv[1:]))
