"""JSON Schema of every handler's payload and result, for the TypeScript client.

``python -m worker schema`` writes worker/schemas/<kind>.payload.json and <kind>.result.json;
``--check`` only compares and exits 1 when a checked-in file is stale or missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from worker.handlers import HANDLERS

SCHEMA_DIR = Path(__file__).with_name("schemas")


def render() -> dict[str, str]:
    files: dict[str, str] = {}
    for kind, handler in sorted(HANDLERS.items()):
        for part, model, mode in (
            ("payload", handler.payload, "validation"),
            ("result", handler.result, "serialization"),
        ):
            schema = {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": f"{kind}.{part}.json",
                **model.model_json_schema(mode=mode),
            }
            files[f"{kind}.{part}.json"] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return files


def export(*, check: bool = False, directory: Path = SCHEMA_DIR) -> int:
    files = render()
    stale = sorted(
        name
        for name, text in files.items()
        if not (directory / name).exists() or (directory / name).read_text() != text
    )
    extra = sorted(p.name for p in directory.glob("*.json") if p.name not in files) if directory.exists() else []
    if check:
        for name in stale:
            print(f"stale: {directory / name}", file=sys.stderr)
        for name in extra:
            print(f"unexpected: {directory / name}", file=sys.stderr)
        if stale or extra:
            print("run `python -m worker schema` and commit the result", file=sys.stderr)
            return 1
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (directory / name).write_text(files[name])
        print(f"wrote {directory / name}")
    for name in extra:
        (directory / name).unlink()
        print(f"removed {directory / name}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None
