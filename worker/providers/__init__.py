"""Model SDK adapters behind ``worker.core.ports.ModelProvider``: Claude (anthropic) and Gemini (google-genai)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class WarmsUp(Protocol):
    """A provider whose SDK does work on its first call that start-up can do instead (canned.py)."""

    async def warm_up(self) -> None: ...
