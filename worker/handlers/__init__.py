"""Handlers by kind: one module per kind, each exporting ``HANDLER``."""

from __future__ import annotations

from typing import Any

from worker.handlers import generate_design, generate_edits, generate_image, rename_layers
from worker.handlers.base import Handler

HANDLERS: dict[str, Handler[Any, Any]] = {
    h.kind: h for h in (generate_design.HANDLER, rename_layers.HANDLER, generate_edits.HANDLER, generate_image.HANDLER)
}
