"""ArtifactStore on a local folder, for the psycopg setup (no Storage API there)."""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath


class FolderArtifacts:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def upload(self, path: str, data: bytes, content_type: str) -> None:
        relative = PurePosixPath(path)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"artifact path must be relative without '..': {path!r}")
        target = self.root.joinpath(*relative.parts)
        await asyncio.to_thread(_write, target, data)


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)
