"""Pure parts of the model stand-ins: content per job kind, PNG bytes, the fault queue, knobs."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
from pydantic import ValidationError

from devstack.models import content
from devstack.models.anthropic_api import finish
from devstack.models.faults import seconds_header
from devstack.models.knobs import FaultQueue, FaultSpec, Knobs


def prompt(kind: str | None, user: str, model: str = "claude-test") -> content.Prompt:
    system = f"You are a design assistant.\njob_kind: {kind}" if kind else "You are a design assistant."
    return content.Prompt(model=model, system=system, user=user)


def test_kind_marker_is_found_in_system_or_user_text() -> None:
    assert content.detect_kind("blah\njob_kind: rename_layers\nmore") == "rename_layers"
    assert content.Prompt("m", "", "job_kind:generate_edits do it").kind == "generate_edits"
    assert content.detect_kind("no marker here") is None


def test_answers_are_deterministic_and_depend_on_the_input() -> None:
    a = prompt("generate_design", "A pricing page for a coffee subscription")
    b = prompt("generate_design", "A login screen for a banking app")
    assert content.answer_text(a) == content.answer_text(a)
    assert content.answer_text(a) != content.answer_text(b)


def test_design_tree_is_a_figma_frame_built_from_the_prompt_words() -> None:
    tree = json.loads(content.answer_text(prompt("generate_design", "Pricing page for coffee subscriptions")))
    assert tree["type"] == "FRAME"
    assert tree["layout"] == {"mode": "VERTICAL", "padding": 24, "gap": 16}
    kinds = {child["type"] for child in tree["children"]}
    assert {"TEXT", "RECTANGLE", "FRAME", "INSTANCE"} <= kinds
    title = next(c for c in tree["children"] if c["name"] == "Title")
    assert "Coffee" in title["characters"]
    for fill in tree["fills"]:
        assert all(0.0 <= v <= 1.0 for v in fill["color"].values())


def test_design_reuses_a_component_key_from_the_design_system() -> None:
    key = "a" * 40
    p = prompt("generate_design", f'Hero section. Design system: {{"components": [{{"componentKey": "{key}"}}]}}')
    tree = json.loads(content.answer_text(p))
    instance = next(c for c in tree["children"] if c["type"] == "INSTANCE")
    assert instance["componentKey"] == key


def test_rename_layers_names_every_layer_uniquely_among_siblings() -> None:
    layers = [{"id": "1:1", "name": "Frame 1", "type": "FRAME", "parent_id": None}]
    layers += [
        {"id": f"1:{i}", "name": f"Rectangle {i}", "type": "RECTANGLE", "parent_id": "1:1"} for i in range(2, 12)
    ]
    layers.append({"id": "1:20", "name": "Text", "type": "TEXT", "parent_id": "1:1", "text": "Welcome back"})
    answer = json.loads(content.answer_text(prompt("rename_layers", "Rename these:\n" + json.dumps(layers))))

    assert [item["id"] for item in answer] == [layer["id"] for layer in layers]
    siblings = [item["name"] for item in answer if item["id"] != "1:1"]
    assert len(siblings) == len(set(siblings))
    names = {item["id"]: item["name"] for item in answer}
    assert names["1:20"] == "Welcome back Label"
    assert names["1:1"] == "Welcome back Section"  # a container is named after its text
    assert not any(name.startswith("Rectangle") for name in siblings)


def test_edit_variants_honour_the_requested_count() -> None:
    answer = json.loads(
        content.answer_text(prompt("generate_edits", 'Give 5 variants of "Start your free trial today"'))
    )
    assert len(answer["variants"]) == 5
    assert all(v["title"] and "free trial" in v["text"].lower() for v in answer["variants"])
    default = json.loads(content.answer_text(prompt("generate_edits", 'Rewrite "Start your free trial today"')))
    assert len(default["variants"]) == 3


def test_invalid_answer_breaks_json_for_every_json_kind() -> None:
    for kind in sorted(content.JSON_KINDS):
        p = prompt(kind, 'Make "something nice" [{"id": "1:2", "type": "TEXT", "text": "Hi"}]')
        json.loads(content.answer_text(p))  # the normal answer parses...
        with pytest.raises(json.JSONDecodeError):
            json.loads(content.invalid_answer(p))  # ...the faulty one does not


def test_unknown_kind_gets_a_short_generic_text() -> None:
    text = content.answer_text(prompt(None, "Tell me about typography"))
    assert "typography" in text
    assert len(text) < 200


def test_split_deltas_reassembles_to_the_text() -> None:
    text = content.answer_text(prompt("generate_edits", 'Rewrite "Save 20% on your first order"'))
    pieces = content.split_deltas(text, 42)
    assert "".join(pieces) == text
    assert len(pieces) > 10
    assert all(1 <= len(p) <= 9 for p in pieces)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data.startswith(content.PNG_SIGNATURE)
    chunks, pos = [], len(content.PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def test_png_is_well_formed_and_seeded() -> None:
    width, height = content.image_size("16:9")
    data = content.render_png(7, width, height)
    chunks = _png_chunks(data)
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    w, h, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (w, h, depth, colour) == (256, 144, 8, 2)
    pixels = zlib.decompress(chunks[1][1])
    assert len(pixels) == h * (1 + 3 * w)
    assert content.render_png(7, width, height) == data
    assert content.render_png(8, width, height) != data


def test_image_size_keeps_the_aspect_ratio() -> None:
    assert content.image_size(None) == (256, 256)
    assert content.image_size("9:16") == (144, 256)
    assert content.image_size("4:3") == (256, 192)


def test_finish_applies_stop_sequences_then_the_token_budget() -> None:
    assert finish("hello STOP world", 100, ["STOP"]) == ("hello ", "stop_sequence", "STOP")
    text, reason, _ = finish("x" * 400, 10, None)
    assert (len(text), reason) == (40, "max_tokens")
    assert finish("short", 100, None) == ("short", "end_turn", None)


def test_fault_queue_counts_down_and_filters() -> None:
    queue = FaultQueue()
    queue.add(FaultSpec(provider="gemini", kind="503", count=1))
    queue.add(FaultSpec(provider="any", kind="429", count=2, match="job_kind: generate_image"))

    assert queue.take("anthropic", "job_kind: generate_design") is None
    first = queue.take("anthropic", "job_kind: generate_image")
    assert first is not None
    assert first.kind == "429"
    assert [f["remaining"] for f in queue.pending()] == [1, 1]
    gemini = queue.take("gemini", "anything")
    assert gemini is not None
    assert gemini.kind == "503"
    assert queue.take("gemini", "job_kind: generate_image") is not None
    assert queue.pending() == []
    assert queue.take("gemini", "job_kind: generate_image") is None


def test_fault_spec_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="count"):
        FaultSpec.model_validate({"kind": "429", "count": 0})
    with pytest.raises(ValidationError, match="kind"):
        FaultSpec.model_validate({"kind": "418"})
    with pytest.raises(ValidationError, match="extra"):
        FaultSpec.model_validate({"kind": "429", "colour": "red"})
    assert FaultSpec(kind="429").retry_after_or_default() == 1.0
    assert FaultSpec(kind="500").retry_after_or_default() is None


def test_knobs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_LATENCY_MS", "250")
    monkeypatch.setenv("STANDIN_STREAM_DELAY_MS", "15")
    assert Knobs.from_env() == Knobs(latency_ms=250, stream_delay_ms=15)
    monkeypatch.setenv("STANDIN_LATENCY_MS", "fast")
    with pytest.raises(ValueError, match="STANDIN_LATENCY_MS"):
        Knobs.from_env()


def test_retry_after_header_format() -> None:
    assert seconds_header(3.0) == "3"
    assert seconds_header(0.25) == "0.25"


def test_seed_changes_with_model_system_or_user_text() -> None:
    base = content.Prompt("m", "s", "u")
    assert base.seed == content.Prompt("m", "s", "u").seed
    assert len({base.seed, content.Prompt("m2", "s", "u").seed, content.Prompt("m", "s", "u2").seed}) == 3
