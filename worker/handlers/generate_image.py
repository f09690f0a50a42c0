"""generate_image: Gemini image model -> bytes to Storage; the result holds the path and metadata."""

from __future__ import annotations

import struct
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.core.context import JobContext
from worker.core.errors import InvalidOutput
from worker.handlers.base import Handler, JobResult

AspectRatio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class GenerateImagePayload(BaseModel):
    model_config = ConfigDict(extra="forbid", title="GenerateImagePayload")

    prompt: str = Field(min_length=1, max_length=2000)
    aspect_ratio: AspectRatio | None = None


class GenerateImageResult(JobResult):
    model_config = ConfigDict(extra="forbid", title="GenerateImageResult")

    path: str = Field(description="Object path in the job-artifacts bucket: <user_id>/<job_id>/<file>")
    mime_type: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    bytes: int = Field(ge=1)


def image_size(data: bytes, mime_type: str) -> tuple[int, int]:
    """Width and height from the file header (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                break
            marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return int(width & 0x3FFF), int(height & 0x3FFF)
    raise InvalidOutput(f"cannot read the size of the generated {mime_type} image")


async def run(payload: GenerateImagePayload, ctx: JobContext) -> GenerateImageResult:
    await ctx.progress(5, "generating image")
    image = await ctx.model.generate_image(f"job_kind: generate_image\n{payload.prompt}", payload.aspect_ratio)
    extension = EXTENSIONS.get(image.mime_type)
    if extension is None:
        raise InvalidOutput(f"unexpected image type {image.mime_type}")
    width, height = image_size(image.data, image.mime_type)
    path = f"{ctx.job.user_id}/{ctx.job.id}/image.{extension}"
    await ctx.progress(80, "uploading")
    await ctx.artifacts.upload(path, image.data, image.mime_type)
    return GenerateImageResult(path=path, mime_type=image.mime_type, width=width, height=height, bytes=len(image.data))


HANDLER = Handler("generate_image", GenerateImagePayload, GenerateImageResult, run)
