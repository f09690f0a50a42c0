"""Anthropic Messages API stand-in: ``POST /v1/messages``, plain JSON or SSE streaming.

Shapes follow what the ``anthropic`` SDK sends and parses (see its ``types/message.py``,
``types/raw_*_event.py`` and ``_streaming.py``): every SSE event needs an ``event:`` line, since
the SDK skips events without a name.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from devstack.models import content
from devstack.models.faults import (
    BadRequest,
    DroppedConnection,
    StandinState,
    seconds_header,
    take_fault,
    validation_message,
)
from devstack.models.knobs import FaultSpec
from devstack.models.request_log import Timing, logged_headers

_ERROR_TYPES = {429: "rate_limit_error", 500: "api_error", 503: "api_error", 529: "overloaded_error"}
_ERROR_MESSAGES = {
    429: "This request would exceed the rate limit for your organization (stand-in fault).",
    500: "Internal server error",
    503: "Service unavailable",
    529: "Overloaded",
}


class Block(BaseModel):
    """A content block; only text blocks matter to the stand-in, others are accepted as-is."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_blocks_have_text(self) -> Block:
        if self.type == "text" and self.text is None:
            raise ValueError("text content blocks must have a `text` string")
        return self


class MessageParam(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant"]
    content: str | Annotated[list[Block], Field(min_length=1)]


class MessagesRequest(BaseModel):
    # Unknown top-level fields (tools, metadata, thinking, ...) are accepted and ignored.
    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[Block] | None = None
    stream: bool = False
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)


def _text_of(value: str | list[Block] | None) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return "\n".join(b.text for b in value if b.type == "text" and b.text)


def to_prompt(req: MessagesRequest) -> content.Prompt:
    user = "\n".join(_text_of(m.content) for m in req.messages if m.role == "user")
    return content.Prompt(model=req.model, system=_text_of(req.system), user=user)


def error_response(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    request_id = "req_standin_" + hashlib.sha256(f"{status}{message}".encode()).hexdigest()[:20]
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    return JSONResponse(body, status, headers={"request-id": request_id, **(headers or {})})


def fault_response(spec: FaultSpec) -> JSONResponse:
    status = spec.status()
    retry_after = spec.retry_after_or_default()
    headers = {"retry-after": seconds_header(retry_after)} if retry_after is not None else {}
    return error_response(status, _ERROR_TYPES[status], _ERROR_MESSAGES[status], headers)


def finish(text: str, max_tokens: int, stops: list[str] | None) -> tuple[str, str, str | None]:
    """Apply stop sequences, then the token budget; return (text, stop_reason, stop_sequence)."""
    hits = [(text.find(s), s) for s in stops or [] if s and s in text]
    if hits:
        cut, stop = min(hits)
        return text[:cut], "stop_sequence", stop
    if content.estimate_tokens(text) > max_tokens:
        return text[: max_tokens * 4], "max_tokens", None
    return text, "end_turn", None


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class Answer:
    """One reply, renderable as a Message or as the SSE event sequence that builds it."""

    def __init__(self, req: MessagesRequest, prompt: content.Prompt, text: str, seq: int) -> None:
        self.text, self.stop_reason, self.stop_sequence = finish(text, req.max_tokens, req.stop_sequences)
        self.model = req.model
        self.seed = prompt.seed
        self.input_tokens = content.estimate_tokens(prompt.full_text)
        self.output_tokens = content.estimate_tokens(self.text)
        self.id = "msg_standin_" + hashlib.sha256(f"{prompt.seed}:{seq}".encode()).hexdigest()[:24]

    def _message(self, text: str | None, stop_reason: str | None, output_tokens: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [] if text is None else [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": self.stop_sequence if stop_reason else None,
            # As the real API: input_tokens excludes cache reads and writes, reported beside it.
            "usage": {
                "input_tokens": self.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output_tokens,
            },
        }

    def message(self) -> dict[str, Any]:
        return self._message(self.text, self.stop_reason, self.output_tokens)

    def events(self) -> list[bytes]:
        deltas = [
            _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
            for piece in content.split_deltas(self.text, self.seed)
        ]
        stop_delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        return [
            _sse("message_start", {"type": "message_start", "message": self._message(None, None, 1)}),
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            _sse("ping", {"type": "ping"}),
            *deltas,
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse(
                "message_delta",
                {"type": "message_delta", "delta": stop_delta, "usage": {"output_tokens": self.output_tokens}},
            ),
            _sse("message_stop", {"type": "message_stop"}),
        ]


def _check_headers(request: Request) -> None:
    if "x-api-key" not in request.headers and not request.headers.get("authorization", "").startswith("Bearer "):
        raise BadRequest(
            error_response(
                401,
                "authentication_error",
                "missing credentials: send an x-api-key header or Authorization: Bearer <key>",
            )
        )
    if "anthropic-version" not in request.headers:
        raise BadRequest(error_response(400, "invalid_request_error", "anthropic-version: header is required"))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(error_response(400, "invalid_request_error", f"The body is not valid JSON: {exc}")) from exc
    if not isinstance(data, dict):
        raise BadRequest(error_response(400, "invalid_request_error", "The request body must be a JSON object"))
    return data


def _validate(data: dict[str, Any]) -> MessagesRequest:
    try:
        return MessagesRequest.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(error_response(400, "invalid_request_error", validation_message(exc))) from exc


def routes(state: StandinState) -> list[BaseRoute]:
    async def stream_body(events: list[bytes], timing: Timing) -> AsyncIterator[bytes]:
        try:
            for i, event in enumerate(events):
                if event.startswith(b"event: content_block_delta") and i > 3:
                    await state.knobs.between_deltas()
                yield event
        finally:  # also when the client leaves mid-stream
            timing.end()

    async def create_message(request: Request) -> Response:
        received = time.time()
        raw = await request.body()
        data: Any = raw.decode(errors="replace")
        try:
            _check_headers(request)
            data = _json_object(raw)
            req = _validate(data)
        except BadRequest as exc:
            state.log.add(
                provider="anthropic",
                path=request.url.path,
                model=data.get("model") if isinstance(data, dict) else None,
                job_kind=None,
                stream=False,
                fault=None,
                status=exc.response.status_code,
                headers=logged_headers(request),
                body=data,
            )
            return exc.response
        prompt = to_prompt(req)
        outcome = await take_fault(
            state,
            request,
            "anthropic",
            raw,
            model=req.model,
            job_kind=prompt.kind,
            stream=req.stream,
            body=data,
            error_response=fault_response,
            received=received,
        )
        if outcome.early is not None:
            return outcome.early
        spec, record, timing = outcome.spec, outcome.record, outcome.timing
        timing.latency_ms = await state.knobs.before_answer()
        text = content.invalid_answer(prompt) if spec and spec.kind == "invalid_json" else content.answer_text(prompt)
        answer = Answer(req, prompt, text, record.seq)
        headers = {"request-id": f"req_standin_{answer.id[12:]}"}
        if req.stream:
            events = answer.events()
            # Both stream faults cut the answer after its first third (at least its first delta).
            first_part = events[: max(4, len(events) // 3)]
            if spec is not None and spec.kind == "disconnect":
                timing.end()
                return DroppedConnection(b"".join(first_part), "text/event-stream")
            if spec is not None and spec.kind == "stream_error":
                error = {"type": "error", "error": {"type": "overloaded_error", "message": _ERROR_MESSAGES[529]}}
                events = [*first_part, _sse("error", error)]
            return StreamingResponse(stream_body(events, timing), media_type="text/event-stream", headers=headers)
        response: Response
        if spec is not None and spec.kind == "disconnect":
            full = json.dumps(answer.message()).encode()
            response = DroppedConnection(full[: len(full) // 2], "application/json")
        else:
            response = JSONResponse(answer.message(), headers=headers)
        timing.end()  # the body is rendered; sending it is the server's part
        return response

    return [Route("/v1/messages", create_message, methods=["POST"])]
