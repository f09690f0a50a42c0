"""CPU-bound work on a large request, kept off the event loop.

Parsing or checking a body of hundreds of thousands of elements takes tens to hundreds of
milliseconds of CPU; on the event loop that long, every other request (``/health`` included)
waits. Large inputs go to one worker thread instead: pure-Python work there gives the GIL back to
the loop every few milliseconds (``sys.getswitchinterval``). One thread, so that concurrent large
requests queue for it rather than crowd the loop out of the GIL.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Below these sizes the work takes about a millisecond or less: done inline, as a thread hop and the
# wait for the GIL would cost more. A query string costs far more per byte (a filter condition is
# a dozen bytes) than a JSON body.
BODY_INLINE_BYTES = 64 * 1024
QUERY_INLINE_CHARS = 2 * 1024

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-cpu")


async def cpu_bound(large: bool, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``: in the worker thread if the input is ``large``, else inline."""
    if not large:
        return fn(*args, **kwargs)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_worker, functools.partial(fn, *args, **kwargs))
