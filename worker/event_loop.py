"""The event loop the worker runs on: uvloop where it is installed, else asyncio's own.

uvloop (libuv, its transports in C) cut the worker's CPU per job by 3-4 % under the AI load and
8-17 % in a drain, where the loop's own work is a larger share (bench/FIXES.md). It does not
build on Windows, so ``auto`` falls back to asyncio there; ``WORKER_EVENT_LOOP=asyncio`` turns it
off anywhere (say, to rule it out while chasing a bug).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def factory(choice: EventLoopChoice) -> LoopFactory | None:
    """The loop factory for ``asyncio.Runner``; None is asyncio's default loop."""
    if choice == "asyncio" or (choice == "auto" and not uvloop_installed()):
        return None
    import uvloop  # ImportError for an explicit "uvloop" without it; config.py checks that first

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: EventLoopChoice = "auto") -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=factory(choice)) as runner:
        return runner.run(main)


def describe(loop: asyncio.AbstractEventLoop) -> str:
    """The running loop for the start-up log: "uvloop 0.22.1" or "asyncio (_UnixSelectorEventLoop)"."""
    module = type(loop).__module__.split(".")[0]
    if module == "uvloop":
        from importlib.metadata import version

        return f"uvloop {version('uvloop')}"
    return f"asyncio ({type(loop).__name__})"
