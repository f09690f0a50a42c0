"""generate_edits: copy-edit variants, streamed live to the plugin through report_progress(partial)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from worker.core.context import JobContext
from worker.core.ports import TextRequest
from worker.core.streaming import PartialBuffer
from worker.handlers.base import Handler, JobResult
from worker.handlers.model_json import ask_json

SYSTEM = """job_kind: generate_edits
You are a UX copy editor. Answer with only JSON: {"variants": [{"title", "text"}]}, one entry
per requested variant, each with a short style title and the rewritten copy."""


class GenerateEditsPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", title="GenerateEditsPayload")

    text: str = Field(min_length=1, max_length=5000, description="The copy to rewrite")
    instruction: str = Field(default="", max_length=1000)
    variants: int = Field(default=3, ge=1, le=6)


class Variant(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=10_000)


class GenerateEditsResult(JobResult):
    model_config = ConfigDict(extra="forbid", title="GenerateEditsResult")

    variants: list[Variant] = Field(min_length=1, max_length=6)


async def run(payload: GenerateEditsPayload, ctx: JobContext) -> GenerateEditsResult:
    prompt = f'Rewrite this copy: "{payload.text}"\n{payload.instruction}\nvariants: {payload.variants}'
    request = TextRequest.ask(SYSTEM, prompt, max_tokens=4096)
    buffer = PartialBuffer(ctx.partial, ctx.clock)
    parts: list[str] = []
    async for delta in ctx.model.stream(request):
        parts.append(delta)
        await buffer.add(delta)
    await buffer.flush()
    result = await ask_json(ctx.model, request, GenerateEditsResult, answer="".join(parts))
    return GenerateEditsResult(variants=result.variants[: payload.variants])


HANDLER = Handler("generate_edits", GenerateEditsPayload, GenerateEditsResult, run)
