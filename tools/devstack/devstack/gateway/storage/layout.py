"""Which bucket names and object keys are valid, and where an object's bytes live on disk.

Each stored upload is its own file ``<root>/<bucket>/<key>/~<version>`` (as Storage's file backend
keeps ``<key>/<version>``; a key segment too long for a file name goes under its digest): a new
upload never overwrites bytes a committed row points at, so the metadata row and the bytes always
agree. ``~`` cannot occur in a key or bucket name, so version
files and the temp area (``<root>/~tmp``) never collide with objects.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

from devstack.gateway.storage.errors import invalid_bucket_name, invalid_key, key_too_long

# Storage's S3-safe character sets (src/storage/limits.ts); no backslash, NUL or `~`.
_VALID_OBJECT_KEY = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$")
_VALID_BUCKET_NAME = re.compile(r"^[A-Za-z0-9_!.*'() &$=@;:+,?-]+$")
_DOT_SEGMENTS = frozenset({".", ".."})
MAX_BUCKET_NAME_LENGTH = 100
# S3's limit on an object key (UTF-8 bytes), which hosted Storage keeps its objects in.
MAX_KEY_BYTES = 1024
# Linux refuses file names over 255 bytes; a key segment may be longer (hosted keys are S3 keys).
_MAX_SEGMENT_BYTES = 200


def check_bucket_name(name: str) -> str:
    if len(name) > MAX_BUCKET_NAME_LENGTH or not _VALID_BUCKET_NAME.match(name) or name in _DOT_SEGMENTS:
        raise invalid_bucket_name(name)
    return name


def check_key(key: str) -> str:
    """Refuse keys that are not S3-safe, longer than S3 allows, or could walk out of the bucket's
    folder. Within S3's 1,024 bytes every key fits on disk (segments over 200 bytes go under
    their digest); past it the path could exceed PATH_MAX."""
    if len(key.encode()) > MAX_KEY_BYTES:
        raise key_too_long(MAX_KEY_BYTES)
    if not _VALID_OBJECT_KEY.match(key) or key.startswith("/") or any(p in _DOT_SEGMENTS for p in key.split("/")):
        raise invalid_key(key)
    return key


class Layout:
    def __init__(self, root: Path):
        self.root = root

    def object_file(self, bucket: str, key: str, version: str) -> Path:
        folders = [_on_disk(segment) for segment in check_key(key).split("/")]
        path = self.root.joinpath(check_bucket_name(bucket), *folders, f"~{version}")
        # Belt and braces: the checks above already exclude every way out of the root.
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise invalid_key(key)
        return path

    def temp_file(self) -> Path:
        folder = self.root / "~tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / uuid.uuid4().hex


def _on_disk(segment: str) -> str:
    """A key segment's folder name: itself, or a digest when it is too long for the filesystem
    (``~`` marks it, and cannot occur in a key, so it never collides with a real segment)."""
    if len(segment.encode()) <= _MAX_SEGMENT_BYTES:
        return segment
    return "~" + hashlib.sha256(segment.encode()).hexdigest()
