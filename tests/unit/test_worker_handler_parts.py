"""Pure parts of the handlers: batching, sibling names, JSON answers, partial coalescing, image sizes."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from worker.core.context import JobContext
from worker.core.errors import InvalidOutput
from worker.core.metrics import Metrics
from worker.core.streaming import PartialBuffer
from worker.handlers.base import Handler, JobResult
from worker.handlers.figma import FigmaNode
from worker.handlers.generate_image import image_size
from worker.handlers.model_json import AnswerError, parse_answer
from worker.handlers.rename_layers import (
    Layer,
    LayerName,
    RenameLayersPayload,
    RenameLayersResult,
    batches,
    check_batch,
    dedupe_siblings,
)
from worker.schema_export import export, render


def layers(n: int, parent: str | None = "p") -> list[Layer]:
    return [Layer(id=f"1:{i}", type="TEXT", text=f"t{i}", parent_id=parent) for i in range(n)]


def test_batches_of_25_cover_every_layer_in_order() -> None:
    groups = batches(layers(501 - 1))
    assert [len(g) for g in groups] == [25] * 20
    assert [layer.id for g in groups for layer in g] == [f"1:{i}" for i in range(500)]
    assert [len(g) for g in batches(layers(26))] == [25, 1]


def test_payload_limits() -> None:
    with pytest.raises(ValueError, match="at most 500"):
        RenameLayersPayload(layers=layers(501))
    with pytest.raises(ValueError, match="unique"):
        RenameLayersPayload(layers=[*layers(2), layers(1)[0]])


def test_check_batch_requires_exactly_the_ids_sent() -> None:
    batch = layers(2)
    ok = check_batch(batch, [LayerName(id="1:1", name=" B "), LayerName(id="1:0", name="A")])
    assert [(n.id, n.name) for n in ok] == [("1:0", "A"), ("1:1", "B")]
    with pytest.raises(AnswerError, match="missing"):
        check_batch(batch, [LayerName(id="1:0", name="A")])
    with pytest.raises(AnswerError, match="non-empty"):
        check_batch(batch, [LayerName(id="1:0", name="A"), LayerName(id="1:1", name="  ")])


def test_duplicate_sibling_names_are_numbered_within_80_chars() -> None:
    ls = [*layers(3, "p"), Layer(id="2:0", type="TEXT", parent_id="q")]
    long = "N" * 80
    names = [
        LayerName(id="1:0", name="Title"),
        LayerName(id="1:1", name="title"),
        LayerName(id="1:2", name="Title"),
        LayerName(id="2:0", name="Title"),
    ]
    assert [n.name for n in dedupe_siblings(ls, names)] == ["Title", "title 2", "Title 3", "Title"]
    clash = dedupe_siblings(ls[:2], [LayerName(id="1:0", name=long), LayerName(id="1:1", name=long)])
    assert len(clash[1].name) == 80 and clash[1].name.endswith(" 2")


def test_parse_answer_takes_json_out_of_prose_and_fences() -> None:
    tree = '{"type": "FRAME", "name": "Root", "children": [{"type": "TEXT", "name": "T", "characters": "Hi"}]}'
    text = f"Sure!\n```json\n{tree}\n```"
    node = parse_answer(text, FigmaNode)
    assert node.count() == 2
    for fenced in (f"```\n{tree}\n```", f"```JSON {tree}```  \n", f"  ```json\n\n{tree}\n\n```\nHope this helps!"):
        assert parse_answer(fenced, FigmaNode) == node
    with pytest.raises(AnswerError, match="invalid JSON"):
        parse_answer('Sure! {"type": "FRAME", "name": ', FigmaNode)
    with pytest.raises(AnswerError, match="needs characters"):
        parse_answer('{"type": "TEXT", "name": "T"}', FigmaNode)
    with pytest.raises(AnswerError, match="only FRAME"):
        parse_answer(
            '{"type": "TEXT", "name": "T", "characters": "x", "children": []}'.replace(
                "[]", '[{"type":"RECTANGLE","name":"r"}]'
            ),
            FigmaNode,
        )
    with pytest.raises(AnswerError, match="no JSON"):
        parse_answer("I cannot help with that.", FigmaNode)


class StepClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


async def test_partial_buffer_coalesces_by_time_and_size() -> None:
    clock = StepClock()
    sent: list[str] = []

    async def flush(text: str) -> None:
        sent.append(text)

    buffer = PartialBuffer(flush, clock, min_interval=0.05, min_chars=200)
    for _ in range(10):  # ten small deltas within 10 ms: nothing written yet
        clock.t += 0.001
        await buffer.add("ab")
    assert sent == []
    clock.t += 0.05
    await buffer.add("c")  # 50 ms since the last write: one write with everything so far
    assert sent == ["ab" * 10 + "c"]
    await buffer.add("x" * 250)  # size alone triggers a write
    assert sent[-1] == "x" * 250
    await buffer.add("tail")
    await buffer.flush()
    assert "".join(sent) == "ab" * 10 + "c" + "x" * 250 + "tail" and buffer.flushes == 3


def test_image_size_from_headers() -> None:
    png = (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 640, 360) + b"\x08\x02\x00\x00\x00"
    )
    assert image_size(png, "image/png") == (640, 360)
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0"
        + (16).to_bytes(2, "big")
        + b"\x00" * 14
        + b"\xff\xc0"
        + (17).to_bytes(2, "big")
        + b"\x08"
        + struct.pack(">HH", 300, 400)
        + b"\x00" * 10
    )
    assert image_size(jpeg, "image/jpeg") == (400, 300)
    with pytest.raises(InvalidOutput, match="cannot read the size"):
        image_size(b"GIF89a....", "image/gif")


def test_metrics_render_prometheus_text() -> None:
    m = Metrics()
    m.inc("worker_jobs_claimed_total", kind="rename_layers")
    m.inc("worker_jobs_claimed_total", kind="rename_layers")
    m.set("worker_jobs_in_flight", 2)
    m.observe("worker_claim_duration_seconds", 0.02)
    text = m.render()
    assert 'worker_jobs_claimed_total{kind="rename_layers"} 2' in text
    assert "# TYPE worker_jobs_claimed_total counter" in text
    assert "worker_jobs_in_flight 2" in text
    assert 'worker_claim_duration_seconds_bucket{le="0.025"} 1' in text
    assert 'worker_claim_duration_seconds_bucket{le="0.01"} 0' in text
    assert "worker_claim_duration_seconds_count 1" in text


def test_schema_check_detects_stale_files(tmp_path: Path) -> None:
    assert export(check=True, directory=tmp_path) == 1
    assert export(directory=tmp_path) == 0
    assert export(check=True, directory=tmp_path) == 0
    (tmp_path / "rename_layers.result.json").write_text("{}")
    assert export(check=True, directory=tmp_path) == 1


def test_checked_in_schemas_are_current() -> None:
    assert export(check=True) == 0
    assert set(render()) == {
        f"{k}.{p}.json"
        for k in ("generate_design", "rename_layers", "generate_edits", "generate_image")
        for p in ("payload", "result")
    }


def test_a_handler_result_of_another_type_is_invalid_output_and_a_valid_one_is_sent_as_json() -> None:
    async def wrong(payload: RenameLayersPayload, ctx: JobContext) -> RenameLayersResult:
        return cast(RenameLayersResult, JobResult())

    async def right(payload: RenameLayersPayload, ctx: JobContext) -> RenameLayersResult:
        return RenameLayersResult(names=[LayerName(id="1:0", name="Title")])

    ctx = cast(JobContext, object())  # neither run reads it
    raw = {"layers": [{"id": "1:0", "type": "TEXT"}]}
    bad = Handler("rename_layers", RenameLayersPayload, RenameLayersResult, wrong)
    with pytest.raises(InvalidOutput, match=r"^result: expected RenameLayersResult, got JobResult$"):
        asyncio.run(bad(raw, ctx))
    good = Handler("rename_layers", RenameLayersPayload, RenameLayersResult, right)
    # JSON mode, None left out (the unset `model`): what the plugin's generated types describe.
    assert asyncio.run(good(raw, ctx)) == {"names": [{"id": "1:0", "name": "Title"}]}


def test_no_handler_builds_a_result_without_validation() -> None:
    # Handler.__call__ trusts a result of the right type: it was validated when built.
    handlers = Path(__file__).resolve().parents[2] / "worker" / "handlers"
    for source in handlers.glob("*.py"):
        code = "\n".join(line for line in source.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert "model_construct" not in code, source.name
