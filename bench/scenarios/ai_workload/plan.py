"""The AI workload model: the knobs of a run (Plan) and the payloads plugin users send, each
tagged so the stand-ins' request log can be matched to its job."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, replace
from typing import Any

from bench.scenario import Context

NAME = "ai_workload"
KINDS = ("rename_layers", "generate_design", "generate_edits", "generate_image")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

# Every payload carries a unique tag in text the worker forwards to the model; the stand-ins
# extract it (tag_pattern), so each model request can be matched to its job.
TAG_PATTERN = r"\[\[aiw:([0-9a-f]{16})\]\]"


@dataclass(frozen=True)
class Plan:
    users: int
    duration_s: float
    probe_jobs: int  # rename-50 jobs on the idle system, one at a time
    drain_cap_s: float  # after the load: how long in-flight jobs may take to finish
    ramp_s: float  # users start at a random moment within this window
    think_s: tuple[float, float] = (1.0, 5.0)
    latency_ms: tuple[int, int] = (2000, 5000)
    stream_delay_ms: int = 15  # between streamed deltas, after the latency (~60 deltas per edit job)
    error_429_rate: float = 0.02
    error_429_retry_after_s: float = 1.0
    probe_latency_ms: int = 3000
    worker_concurrency: int = 200
    provider_concurrency: int = 256
    rename_layers: int = 50
    # False when --users changed the count: the issue's overhead and CPU goals are set for the
    # default load, so a run at another load reports them without a verdict.
    issue_load: bool = True
    # "supabase" is the product's default (REST + Realtime through the gateway); "postgres"
    # (psycopg, LISTEN/NOTIFY) exists for comparison runs that take the REST path out.
    store: str = "supabase"
    mix: tuple[tuple[str, float], ...] = (
        ("rename_layers", 0.40),
        ("generate_design", 0.25),
        ("generate_edits", 0.20),
        ("generate_image", 0.15),
    )
    seed: int = 20261123

    @property
    def name(self) -> str:
        """The scenario's name in the report (and its files' prefix): one per store."""
        return NAME if self.store == "supabase" else f"{NAME}_direct"

    @classmethod
    def for_context(cls, ctx: Context) -> Plan:
        if ctx.quick:
            plan = cls(users=20, duration_s=12.0, probe_jobs=2, drain_cap_s=20.0, ramp_s=3.0)
        else:
            plan = cls(users=200, duration_s=60.0, probe_jobs=5, drain_cap_s=45.0, ramp_s=5.0)
        if ctx.users is None or ctx.users == plan.users:
            return plan
        return replace(plan, users=ctx.users, issue_load=False)


_SCREENS = ("Checkout", "Pricing", "Onboarding step 2", "Settings", "Dashboard", "Sign-up", "Order history")
_COPY = (
    "Start your free trial today",
    "Your order is on its way",
    "Invite your team to collaborate",
    "We could not process your payment",
    "Save 20% with annual billing",
)
_IMAGES = (
    "A calm isometric illustration of a home office",
    "Abstract gradient background in brand teal",
    "A friendly robot waving, flat vector style",
    "Product shot of a ceramic mug on a wooden table",
)
_ASPECTS = ("1:1", "16:9", "4:3", "3:2")
_LAYER_TYPES = ("TEXT", "RECTANGLE", "FRAME", "INSTANCE", "TEXT", "VECTOR", "GROUP")
_TEXTS = ("Total", "Pay now", "Email address", "Remember me", "$24.00", "Shipping", "Apply code", "Back")


def tag_text(tag: str) -> str:
    return f"[[aiw:{tag}]]"


def rename_payload(tag: str, rng: random.Random, layers: int) -> dict[str, Any]:
    """A screen as the plugin sends it: a root frame and ``layers - 1`` children with Figma's
    default names (what users ask to have renamed)."""
    page = rng.randint(1, 400)
    root = f"{page}:1"
    items: list[dict[str, Any]] = [{"id": root, "type": "FRAME", "name": "Frame 1"}]
    frames = [root]
    for i in range(2, layers + 1):
        kind = _LAYER_TYPES[rng.randrange(len(_LAYER_TYPES))]
        layer: dict[str, Any] = {
            "id": f"{page}:{i}",
            "type": kind,
            "name": f"{kind.title()} {i}",
            "parent_id": rng.choice(frames),
        }
        if kind == "TEXT":
            layer["text"] = rng.choice(_TEXTS)
        if kind == "FRAME":
            frames.append(layer["id"])
        items.append(layer)
    return {"layers": items, "context": f"{rng.choice(_SCREENS)} screen, mobile {tag_text(tag)}"}


def payload_for(kind: str, tag: str, rng: random.Random, plan: Plan) -> dict[str, Any]:
    if kind == "rename_layers":
        return rename_payload(tag, rng, plan.rename_layers)
    if kind == "generate_design":
        return {
            "prompt": f"A {rng.choice(_SCREENS).lower()} screen for a coffee subscription app {tag_text(tag)}",
            "design_system": {
                "summary": "Colors: ink #1B1B1E, accent #E4572E. Type: Inter 14/20, headings 24/32. 8 pt grid.",
                "components": [
                    {"name": "Button/Primary", "key": secrets.token_hex(20)},
                    {"name": "Input/Text", "key": secrets.token_hex(20)},
                ],
            },
            "platform": rng.choice(("desktop", "mobile")),
        }
    if kind == "generate_edits":
        return {"text": rng.choice(_COPY), "instruction": f"Friendlier, shorter. {tag_text(tag)}", "variants": 3}
    return {"prompt": f"{rng.choice(_IMAGES)} {tag_text(tag)}", "aspect_ratio": rng.choice(_ASPECTS)}
