"""rename_layers: up to 500 layers -> descriptive names, in parallel batches (Claude)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, RootModel, TypeAdapter, model_validator

from worker.core.context import JobContext
from worker.core.errors import InvalidOutput
from worker.core.ports import TextRequest
from worker.handlers.base import Handler, JobResult
from worker.handlers.model_json import AnswerError, ask_json, parse_answer, repair_prompt

BATCH_SIZE = 25
MAX_NAME = 80

SYSTEM = """job_kind: rename_layers
You name Figma layers the way a careful designer would: short, descriptive, Title Case.
You get a JSON array of layers (id, type, current name, text, parent_id). Answer with only a
JSON array of {"id", "name"}: one entry per layer, same ids, names of at most 80 characters,
no two siblings (same parent_id) with the same name."""


class Layer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=100)
    type: str = Field(min_length=1, max_length=40)
    name: str = Field(default="", max_length=500)
    text: str | None = Field(default=None, max_length=2000)
    parent_id: str | None = Field(default=None, max_length=100)


class RenameLayersPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", title="RenameLayersPayload")

    layers: list[Layer] = Field(min_length=1, max_length=500)
    context: str = Field(default="", max_length=2000, description="What the screen is about")

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        ids = [layer.id for layer in self.layers]
        if len(set(ids)) != len(ids):
            raise ValueError("layer ids must be unique")
        return self


class LayerName(BaseModel):
    id: str
    name: str = Field(min_length=1, max_length=MAX_NAME)


class RenameLayersResult(JobResult):
    model_config = ConfigDict(extra="forbid", title="RenameLayersResult")

    names: list[LayerName]


class _Answer(RootModel[list[LayerName]]):
    pass


# The batch as compact JSON in one pydantic_core call: 17 µs for 25 layers against 83 for
# model_dump per layer and json.dumps, and no ", " / ": " padding among the prompt's tokens.
_LAYERS = TypeAdapter(list[Layer])


def batches(layers: Sequence[Layer], size: int = BATCH_SIZE) -> list[list[Layer]]:
    return [list(layers[i : i + size]) for i in range(0, len(layers), size)]


def check_batch(batch: Sequence[Layer], answer: list[LayerName]) -> list[LayerName]:
    """Exactly the batch's ids, each once, names trimmed and non-empty."""
    wanted = [layer.id for layer in batch]
    got = [item.id for item in answer]
    if sorted(got) != sorted(wanted):
        missing, extra = set(wanted) - set(got), set(got) - set(wanted)
        raise AnswerError(f"ids do not match the layers sent (missing {sorted(missing)}, unexpected {sorted(extra)})")
    by_id = {item.id: item for item in answer}
    out = []
    for i in wanted:
        item = by_id[i]
        name = item.name.strip()
        if not name:
            raise AnswerError("every name must be non-empty")
        # The model's own item when trimming changes nothing (most): no second validation of it.
        out.append(item if name == item.name else LayerName(id=i, name=name))
    return out


def dedupe_siblings(layers: Sequence[Layer], names: Sequence[LayerName]) -> list[LayerName]:
    """Batches are named independently, so siblings split across batches may collide: number them."""
    parent = {layer.id: layer.parent_id for layer in layers}
    used: dict[tuple[str | None, str], int] = {}
    out = []
    for item in names:
        key = (parent.get(item.id), item.name.casefold())
        used[key] = used.get(key, 0) + 1
        if used[key] == 1:
            out.append(item)  # unchanged: no copy, no second validation (72 -> 16 µs for 50 layers)
            continue
        suffix = f" {used[key]}"
        out.append(LayerName(id=item.id, name=item.name[: MAX_NAME - len(suffix)] + suffix))
    return out


async def name_batch(ctx: JobContext, batch: list[Layer], context: str) -> list[LayerName]:
    layers = _LAYERS.dump_json(batch, exclude_none=True).decode()
    request = TextRequest.ask(SYSTEM, f"Screen: {context or 'unknown'}\nLayers:\n{layers}", max_tokens=4096)
    text = await ctx.model.complete(request)
    try:
        return check_batch(batch, parse_answer(text, _Answer).root)
    except AnswerError as first:
        answer = await ask_json(ctx.model, request.followed_by(text, repair_prompt(str(first))), _Answer)
        try:
            return check_batch(batch, answer.root)
        except AnswerError as second:
            raise InvalidOutput(f"model output invalid after one repair round: {second}") from second


async def run(payload: RenameLayersPayload, ctx: JobContext) -> RenameLayersResult:
    groups = batches(payload.layers)
    results: list[list[LayerName] | None] = [None] * len(groups)
    done = 0

    async def one(index: int) -> None:
        nonlocal done
        results[index] = await name_batch(ctx, groups[index], payload.context)
        done += 1
        await ctx.progress(100 * done / len(groups), f"batch {done} of {len(groups)}")

    # The per-provider limit (LimitedModel) bounds how many batches are in flight at once.
    async with asyncio.TaskGroup() as tg:
        for index in range(len(groups)):
            tg.create_task(one(index))
    names = [item for group in results for item in group or []]
    return RenameLayersResult(names=dedupe_siblings(payload.layers, names))


HANDLER = Handler("rename_layers", RenameLayersPayload, RenameLayersResult, run)
