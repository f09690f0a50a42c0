"""Deterministic, plausible model answers per job kind.

The worker marks each prompt with ``job_kind: <kind>``; the stand-ins answer in the shape a real
model would for that kind. Everything is seeded from a hash of the request, so the same input
always yields the same output (streamed or not), which lets tests compare runs byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

JSON_KINDS = frozenset({"generate_design", "rename_layers", "generate_edits"})
KNOWN_KINDS = JSON_KINDS | {"generate_image"}

_KIND_RE = re.compile(r"job_kind:\s*([A-Za-z_][A-Za-z0-9_]*)")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
_KEY_RE = re.compile(r'"(?:componentKey|component_key|key)"\s*:\s*"([0-9a-fA-F]{16,64})"')
_VARIANTS_RE = re.compile(r"(?:variants?\s*[:=]\s*(\d+))|(?:(\d+)\s+variants?)", re.IGNORECASE)
# fmt: off
_STOPWORDS = frozenset((
    "the", "and", "for", "with", "that", "this", "from", "into", "your", "you", "our", "are", "was", "were",
    "will", "have", "has", "had", "not", "but", "all", "any", "can", "its", "it's", "their", "them", "they",
    "then", "than", "there", "here", "what", "when", "where", "which", "who", "why", "how", "make", "create",
    "design", "generate", "please", "using", "use", "about", "over", "under", "some", "more", "most", "very",
    "just", "also", "like", "want", "need", "should", "would", "could", "page", "screen", "layout", "figma",
    "frame", "return", "json", "only", "answer", "following", "text", "copy", "rewrite", "give", "each",
))
# fmt: on

# Figma colors are 0..1 floats; a few tasteful palettes (background, surface, accent, ink).
_PALETTES: tuple[tuple[str, str, str, str], ...] = (
    ("#F7F5F2", "#FFFFFF", "#E4572E", "#1B1B1E"),
    ("#0F172A", "#1E293B", "#38BDF8", "#F8FAFC"),
    ("#F1F8F4", "#FFFFFF", "#2E7D5B", "#10231A"),
    ("#FFF8E7", "#FFFFFF", "#7C3AED", "#1F1235"),
)


@dataclass(frozen=True)
class Prompt:
    """What the stand-ins need from a request, whichever provider it came through."""

    model: str
    system: str
    user: str  # user-turn text, joined

    @property
    def full_text(self) -> str:
        return f"{self.system}\n{self.user}"

    @property
    def kind(self) -> str | None:
        return detect_kind(self.full_text)

    @property
    def seed(self) -> int:
        # The stream flag and sampling knobs are left out on purpose: the same prompt gives the
        # same answer whether it is streamed or not.
        digest = hashlib.sha256(json.dumps([self.model, self.system, self.user]).encode()).digest()
        return int.from_bytes(digest[:8], "big")

    @property
    def body(self) -> str:
        """The user's words without the machine-readable marker."""
        return _KIND_RE.sub("", self.user).strip()


def detect_kind(text: str) -> str | None:
    match = _KIND_RE.search(text)
    return match.group(1) if match else None


def estimate_tokens(text: str) -> int:
    # Roughly four characters per token, like English text through a BPE tokenizer.
    return max(1, (len(text) + 3) // 4)


def answer_text(prompt: Prompt) -> str:
    """The well-formed answer a model would give for this prompt's job kind."""
    rng = random.Random(prompt.seed)
    kind = prompt.kind
    if kind == "generate_design":
        return json.dumps(design_tree(prompt, rng), ensure_ascii=False)
    if kind == "rename_layers":
        return json.dumps(rename_layers(prompt.full_text), ensure_ascii=False)
    if kind == "generate_edits":
        return json.dumps(edit_variants(prompt.body, rng), ensure_ascii=False)
    if kind == "generate_image":
        return f"Here is an image of {_title(prompt.body, 'your idea').lower()}."
    topic = _title(prompt.body, "your request").lower()
    return f"(stand-in) A short answer about {topic}. No known job_kind marker was found in the prompt."


def invalid_answer(prompt: Prompt) -> str:
    """An answer that breaks the kind's contract: chatty prose around truncated JSON.

    It is what a real model sometimes produces, and what the worker's repair round must handle.
    """
    valid = answer_text(prompt)
    return "Sure! Here is what you asked for:\n" + valid[: max(1, len(valid) // 2)]


def split_deltas(text: str, seed: int) -> list[str]:
    """Cut ``text`` into small pieces (2-9 characters) so consumers see live partial output."""
    rng = random.Random(seed ^ 0x5EED)
    pieces: list[str] = []
    i = 0
    while i < len(text):
        step = rng.randint(2, 9)
        pieces.append(text[i : i + step])
        i += step
    return pieces or [""]


# --- generate_design ---------------------------------------------------------------------------


def _keywords(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD_RE.findall(text):
        low = word.lower()
        if low not in _STOPWORDS:
            seen.setdefault(low, None)
    return list(seen)


def _title(text: str, fallback: str) -> str:
    words = _keywords(text)[:3]
    return " ".join(w.capitalize() for w in words) if words else fallback.title()


def _rgb(hex_color: str) -> dict[str, float]:
    value = int(hex_color.lstrip("#"), 16)
    return {
        "r": round(((value >> 16) & 0xFF) / 255, 3),
        "g": round(((value >> 8) & 0xFF) / 255, 3),
        "b": round((value & 0xFF) / 255, 3),
    }


def _solid(hex_color: str) -> list[dict[str, Any]]:
    return [{"type": "SOLID", "color": _rgb(hex_color)}]


def _component_key(text: str, rng: random.Random) -> str:
    # Reuse a key from the design system the worker sent, if any, so instances resolve in Figma.
    keys = _KEY_RE.findall(text)
    if keys:
        return str(rng.choice(keys))
    return hashlib.sha1(str(rng.random()).encode(), usedforsecurity=False).hexdigest()


def _text(name: str, characters: str, size: int, ink: str, weight: int = 400) -> dict[str, Any]:
    return {
        "type": "TEXT",
        "name": name,
        "characters": characters,
        "fontSize": size,
        "fontWeight": weight,
        "fills": _solid(ink),
    }


def design_tree(prompt: Prompt, rng: random.Random) -> dict[str, Any]:
    words = _keywords(prompt.body) or ["product", "overview", "details"]
    title = _title(prompt.body, "Untitled Screen")
    background, surface, accent, ink = rng.choice(_PALETTES)
    mobile = any(w in prompt.body.lower() for w in ("mobile", "phone", "ios", "android", " app"))
    width, height = (390, 844) if mobile else (1440, 1024)
    cards = [
        {
            "type": "FRAME",
            "name": f"Card / {word.capitalize()}",
            "layout": {"mode": "VERTICAL", "padding": 16, "gap": 8},
            "cornerRadius": 12,
            "fills": _solid(surface),
            "children": [
                _text("Card Title", word.capitalize(), 20, ink, 600),
                _text("Card Body", f"Everything you need for {word}, in one place.", 14, ink),
            ],
        }
        for word in (words * 3)[: rng.randint(2, 4)]
    ]
    cta = rng.choice(("Get started", "Try it free", "Continue", "Learn more"))
    return {
        "type": "FRAME",
        "name": f"{title} Screen",
        "width": width,
        "height": height,
        "layout": {"mode": "VERTICAL", "padding": 24, "gap": 16},
        "fills": _solid(background),
        "children": [
            _text("Title", title, 32, ink, 700),
            _text("Subtitle", f"{words[0].capitalize()} made simple, from first idea to final detail.", 16, ink),
            {
                "type": "RECTANGLE",
                "name": "Hero Image",
                "width": width - 48,
                "height": 240 if mobile else 420,
                "cornerRadius": 16,
                "fills": _solid(accent),
            },
            {
                "type": "FRAME",
                "name": "Feature Row",
                "layout": {"mode": "VERTICAL" if mobile else "HORIZONTAL", "padding": 0, "gap": 16},
                "fills": [],
                "children": cards,
            },
            {
                "type": "INSTANCE",
                "name": "Primary Button",
                "componentKey": _component_key(prompt.full_text, rng),
                "properties": {"Label": cta},
            },
        ],
    }


# --- rename_layers -----------------------------------------------------------------------------

_POOLS: dict[str, tuple[str, ...]] = {
    "RECTANGLE": ("Background", "Card Surface", "Divider", "Image Placeholder", "Overlay"),
    "ELLIPSE": ("Avatar", "Status Dot", "Icon Background"),
    "VECTOR": ("Icon", "Logo Mark", "Arrow Icon"),
    "LINE": ("Divider", "Separator"),
    "GROUP": ("Group", "Cluster", "Stack"),
    "FRAME": ("Container", "Section", "Row", "Column"),
    "COMPONENT": ("Component",),
    "INSTANCE": ("Instance",),
}


def find_layers(text: str) -> list[dict[str, Any]]:
    """The first JSON array of objects with an ``id`` that appears in ``text``."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\[", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) and "id" in v for v in value):
            return value
    return []


def _words(text: str, limit: int) -> str:
    words = text.split()
    snippet = " ".join(words[:limit])
    return snippet[:1].upper() + snippet[1:] if snippet else ""


def _layer_name(layer: dict[str, Any], children_text: dict[str, str]) -> str:
    kind = str(layer.get("type", "FRAME")).upper()
    text = str(layer.get("text") or layer.get("characters") or "").strip()
    seed = int(hashlib.sha256(str(layer.get("id")).encode()).hexdigest()[:8], 16)
    if kind == "TEXT" and text:
        return f"{_words(text, 3)} Label" if len(text.split()) <= 3 else f"{_words(text, 3)}… Paragraph"
    if kind in ("FRAME", "GROUP", "COMPONENT") and (inner := children_text.get(str(layer.get("id")))):
        return f"{_words(inner, 3)} {'Section' if kind == 'FRAME' else kind.title()}"
    pool = _POOLS.get(kind, ("Layer",))
    return pool[seed % len(pool)]


def rename_layers(text: str) -> list[dict[str, str]]:
    layers = find_layers(text)
    # A container is named after the first text inside it, which is how designers name them.
    children_text: dict[str, str] = {}
    for layer in layers:
        parent, inner = layer.get("parent_id"), layer.get("text") or layer.get("characters")
        if parent is not None and inner:
            children_text.setdefault(str(parent), str(inner))
    used: dict[tuple[str, str], int] = {}
    renamed: list[dict[str, str]] = []
    for layer in layers:
        base = _layer_name(layer, children_text)
        sibling_key = (str(layer.get("parent_id")), base)
        used[sibling_key] = used.get(sibling_key, 0) + 1
        name = base if used[sibling_key] == 1 else f"{base} {used[sibling_key]}"
        renamed.append({"id": str(layer["id"]), "name": name})
    return renamed


# --- generate_edits ----------------------------------------------------------------------------


def _source_copy(body: str) -> str:
    quoted = re.findall(r'"([^"]{8,})"|“([^”]{8,})”', body)
    candidates: list[str] = [str(a or b) for a, b in quoted]
    if candidates:
        return max(candidates, key=len).strip()
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return max(lines, key=len) if lines else "Your message here"


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".!?")
    return text[:1].upper() + text[1:] if text else text


_STYLES: tuple[tuple[str, str], ...] = (
    ("Concise", "{short}."),
    ("Friendly", "Hey there! {full}. We think you'll love it."),
    ("Confident", "{full}. No compromises."),
    ("Playful", "Psst... {lower}! Go on, take a look."),
    ("Formal", "Please note: {lower}."),
    ("Urgent", "{full} - today only."),
)


def edit_variants(body: str, rng: random.Random) -> dict[str, list[dict[str, str]]]:
    source = _sentence(_source_copy(body))
    match = _VARIANTS_RE.search(body)
    count = int(next(g for g in match.groups() if g)) if match else 3
    count = min(max(count, 1), len(_STYLES))
    start = rng.randrange(len(_STYLES))
    styles = [_STYLES[(start + i) % len(_STYLES)] for i in range(count)]
    fields = {
        "short": " ".join(source.split()[:8]),
        "full": source,
        "lower": source[:1].lower() + source[1:],
    }
    return {"variants": [{"title": title, "text": pattern.format(**fields)} for title, pattern in styles]}


# --- generate_image ----------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ASPECT_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})


def image_size(aspect_ratio: str | None, long_side: int = 256) -> tuple[int, int]:
    if not aspect_ratio:
        return long_side, long_side
    w, h = (int(part) for part in aspect_ratio.split(":"))
    if w >= h:
        return long_side, max(1, round(long_side * h / w))
    return max(1, round(long_side * w / h)), long_side


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _color(rng: random.Random) -> bytes:
    return bytes(rng.randrange(256) for _ in range(3))


def _rows(seed: int, width: int, height: int) -> Iterable[bytes]:
    rng = random.Random(seed)
    top, bottom = _color(rng), _color(rng)
    discs = [
        (rng.randrange(width), rng.randrange(height), rng.randint(width // 10, width // 3), _color(rng))
        for _ in range(3)
    ]
    for y in range(height):
        t = y / max(1, height - 1)
        row = bytearray(bytes(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)) * width)
        for cx, cy, radius, color in discs:
            dy = y - cy
            if abs(dy) < radius:
                half = int(math.sqrt(radius * radius - dy * dy))
                x0, x1 = max(0, cx - half), min(width, cx + half)
                if x1 > x0:
                    row[x0 * 3 : x1 * 3] = color * (x1 - x0)
        yield b"\x00" + bytes(row)  # filter type 0 (None) per scanline


def render_png(seed: int, width: int = 256, height: int = 256) -> bytes:
    """A valid RGB PNG: a two-colour gradient with three discs, all derived from ``seed``."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    pixels = zlib.compress(b"".join(_rows(seed, width, height)), 6)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")
