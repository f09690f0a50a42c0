"""ArtifactStore on a local folder, for the psycopg setup (no Storage API there)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from worker.core.errors import StoreError


class FolderArtifacts:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _target(self, path: str) -> Path:
        relative = PurePosixPath(path)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"artifact path must be relative without '..': {path!r}")
        return self.root.joinpath(*relative.parts)

    async def upload(self, path: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(_write, self._target(path), data)

    async def remove(self, paths: Sequence[str]) -> None:
        try:
            targets = [self._target(path) for path in paths]
        except ValueError as exc:
            raise StoreError(str(exc), code="artifacts") from exc
        try:
            await asyncio.to_thread(_remove_all, targets, self.root)
        except OSError as exc:
            raise StoreError(f"artifact remove: {exc}", code="artifacts") from exc


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)


def _remove_all(targets: Sequence[Path], root: Path) -> None:
    """Delete each file (already gone is fine) and the folders it leaves empty, up to ``root``."""
    for target in targets:
        target.unlink(missing_ok=True)
        folder = target.parent
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:
                break  # not empty, or gone already
            folder = folder.parent
