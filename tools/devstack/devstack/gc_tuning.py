"""Keep a stand-in's start-up objects out of garbage collection.

A full collection walks every tracked object. In the gateway stand-in those are mostly the
imported libraries (starlette, psycopg, pydantic, the auth and storage code): under the AI
bench's load each full collection stopped the gateway for 30–47 ms, about every 15 s, and every
request in flight waited (bench/FIXES.md, "pauses of the stand-ins' own"). The hosted services
run on machines of their own; a stand-in sharing two cores should not add stops of its own.

The worker does the same (`worker/compose.py`, `freeze_startup_objects`); devstack may not import
the worker (import-linter), so the four lines live here too.
"""

from __future__ import annotations

import gc

# gen-1 collections between full ones; CPython's default is 10.
FULL_EVERY = 100


def freeze_imports() -> None:
    """Move everything alive now to the permanent generation (collections skip it), and run full
    collections ten times less often. Call once, after imports and app set-up, in a server's
    ``__main__`` only: a test process would keep what it froze."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_EVERY)
