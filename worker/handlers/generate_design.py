"""generate_design: prompt + design-system summary -> a validated Figma node tree (Claude)."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from worker.core.context import JobContext
from worker.core.errors import InvalidOutput
from worker.core.ports import TextRequest
from worker.handlers.base import Handler, JobResult
from worker.handlers.figma import FigmaNode
from worker.handlers.model_json import ask_json

MAX_NODES = 2000

SYSTEM = """job_kind: generate_design
You design Figma screens. Answer with one JSON object: the root FRAME node, nothing else.
Node: {"type": "FRAME"|"TEXT"|"RECTANGLE"|"INSTANCE", "name", "width"?, "height"?,
"fills"?: [{"type": "SOLID", "color": {"r","g","b" in 0..1}, "opacity"?}],
"layout"?: {"mode": "HORIZONTAL"|"VERTICAL"|"NONE", "padding"?, "gap"?, "align"?},
"characters" (TEXT), "fontSize"?, "fontWeight"?, "componentKey" (INSTANCE), "cornerRadius"?,
"children"?: [node] (FRAME only)}. Use the design system's components by their key."""


class ComponentRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    key: str = Field(min_length=1, max_length=200)


class DesignSystem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str = Field(default="", max_length=20_000, description="Colors, type scale, spacing, in prose")
    components: list[ComponentRef] = Field(default_factory=list, max_length=200)


class GenerateDesignPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", title="GenerateDesignPayload")

    prompt: str = Field(min_length=1, max_length=4000)
    design_system: DesignSystem = Field(default_factory=DesignSystem)
    platform: str | None = Field(default=None, max_length=40, description="e.g. desktop, mobile")


class GenerateDesignResult(JobResult):
    model_config = ConfigDict(extra="forbid", title="GenerateDesignResult")

    root: FigmaNode
    node_count: int = Field(ge=1)


async def run(payload: GenerateDesignPayload, ctx: JobContext) -> GenerateDesignResult:
    await ctx.progress(5, "designing")
    parts = [payload.prompt]
    if payload.platform:
        parts.append(f"Platform: {payload.platform}")
    if payload.design_system.summary:
        parts.append(f"Design system: {payload.design_system.summary}")
    if payload.design_system.components:
        parts.append("Components: " + json.dumps([c.model_dump() for c in payload.design_system.components]))
    request = TextRequest.ask(SYSTEM, "\n".join(parts), max_tokens=8192)
    root = await ask_json(ctx.model, request, FigmaNode)
    if root.type != "FRAME":
        raise InvalidOutput(f"the root node must be a FRAME, got {root.type}")
    count = root.count()
    if count > MAX_NODES:
        raise InvalidOutput(f"the tree has {count} nodes; the plugin builds at most {MAX_NODES}")
    await ctx.progress(95, f"{count} nodes")
    return GenerateDesignResult(root=root, node_count=count)


HANDLER = Handler("generate_design", GenerateDesignPayload, GenerateDesignResult, run)
