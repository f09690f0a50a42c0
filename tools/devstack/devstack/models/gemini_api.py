"""Gemini API stand-in: ``POST /{version}/models/{model}:generateContent`` and
``:streamGenerateContent`` (``?alt=sse`` as the google-genai SDK asks, or a JSON array without it).

With an API key and a custom ``base_url`` the SDK builds ``{base_url}/{api_version}/models/...``;
its default api_version is ``v1`` (``v1beta`` when asked), so all public versions are served.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
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

VERSIONS = frozenset({"v1", "v1beta", "v1alpha"})
ACTIONS = frozenset({"generateContent", "streamGenerateContent"})
IMAGE_TOKENS = 1290  # what one generated image costs in usageMetadata on the real API
_STATUSES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    529: "UNAVAILABLE",
}
_FAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota). (stand-in fault)",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    529: "The model is overloaded. Please try again later.",
}


class Blob(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    mimeType: str = Field(min_length=1)
    data: str


class Part(BaseModel):
    # Function calls, file data, thoughts... are accepted and ignored.
    model_config = ConfigDict(extra="allow", strict=True)

    text: str | None = None
    inlineData: Blob | None = None


class Content(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "model"] | None = None
    parts: list[Part] = Field(min_length=1)


class ImageConfig(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    aspectRatio: str | None = None


class GenerationConfig(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    maxOutputTokens: int | None = Field(default=None, ge=1)
    responseModalities: list[str] | None = None
    responseMimeType: str | None = None
    stopSequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    imageConfig: ImageConfig | None = None


class GenerateContentRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    contents: list[Content] = Field(min_length=1)
    systemInstruction: Content | None = None
    generationConfig: GenerationConfig = Field(default_factory=GenerationConfig)


def error_response(
    code: int, message: str, headers: dict[str, str] | None = None, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": _STATUSES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, code, headers=headers)


def fault_response(spec: FaultSpec) -> JSONResponse:
    code = int(spec.kind)
    retry_after = spec.retry_after_or_default()
    if retry_after is None:
        return error_response(code, _FAULT_MESSAGES[code])
    # The real API says when to retry in a RetryInfo detail; the header is there for generic clients.
    delay = seconds_header(retry_after) + "s"
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
    return error_response(code, _FAULT_MESSAGES[code], {"retry-after": seconds_header(retry_after)}, details)


def to_prompt(model: str, req: GenerateContentRequest) -> content.Prompt:
    def text(c: Content | None) -> str:
        return "\n".join(p.text for p in c.parts if p.text) if c else ""

    user = "\n".join(text(c) for c in req.contents if c.role in (None, "user"))
    return content.Prompt(model=model, system=text(req.systemInstruction), user=user)


class Answer:
    """One reply, renderable as a GenerateContentResponse or as the chunks that stream it."""

    def __init__(self, model: str, req: GenerateContentRequest, prompt: content.Prompt, text: str, image: bool):
        cfg = req.generationConfig
        self.finish_reason = "STOP"
        for stop in cfg.stopSequences or []:
            if stop and stop in text:
                text = text[: text.find(stop)]
        if cfg.maxOutputTokens is not None and content.estimate_tokens(text) > cfg.maxOutputTokens:
            text, self.finish_reason = text[: cfg.maxOutputTokens * 4], "MAX_TOKENS"
        self.text, self.model, self.seed = text, model, prompt.seed
        self.png = content.render_png(prompt.seed, *content.image_size(_aspect(cfg))) if image else None
        self.prompt_tokens = content.estimate_tokens(prompt.full_text)
        self.output_tokens = content.estimate_tokens(text) + (IMAGE_TOKENS if image else 0)
        # With responseModalities ["IMAGE"] the real API answers with the picture alone.
        modalities = {m.upper() for m in cfg.responseModalities or []}
        self.with_text = not (image and modalities == {"IMAGE"})
        self.response_id = hashlib.sha256(f"{prompt.seed}:{text}".encode()).hexdigest()[:22]

    def _usage(self, final: bool) -> dict[str, int]:
        out = self.output_tokens if final else 0
        return {
            "promptTokenCount": self.prompt_tokens,
            "candidatesTokenCount": out,
            "totalTokenCount": self.prompt_tokens + out,
        }

    def _chunk(self, parts: list[dict[str, Any]], final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if final:
            candidate["finishReason"] = self.finish_reason
        return {
            "candidates": [candidate],
            "usageMetadata": self._usage(final),
            "modelVersion": self.model,
            "responseId": self.response_id,
        }

    def _image_parts(self) -> list[dict[str, Any]]:
        if self.png is None:
            return []
        return [{"inlineData": {"mimeType": "image/png", "data": base64.b64encode(self.png).decode()}}]

    def response(self) -> dict[str, Any]:
        text_parts = [{"text": self.text}] if self.with_text else []
        return self._chunk([*text_parts, *self._image_parts()], final=True)

    def chunks(self) -> list[dict[str, Any]]:
        if not self.with_text:
            return [self.response()]
        pieces = content.split_deltas(self.text, self.seed)
        chunks = [self._chunk([{"text": p}], final=False) for p in pieces[:-1]]
        return [*chunks, self._chunk([{"text": pieces[-1]}, *self._image_parts()], final=True)]


def _aspect(cfg: GenerationConfig) -> str | None:
    return cfg.imageConfig.aspectRatio if cfg.imageConfig else None


def _check_key(request: Request) -> None:
    if "x-goog-api-key" not in request.headers and "key" not in request.query_params:
        raise BadRequest(
            error_response(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        )


def _target(request: Request) -> tuple[str, str]:
    version, target = request.path_params["version"], request.path_params["target"]
    model, _, action = target.partition(":")
    if version not in VERSIONS or action not in ACTIONS or not model:
        raise BadRequest(
            error_response(
                404, f"models/{target} is not found for API version {version}, or the method is not supported."
            )
        )
    return model, action


def _validate(raw: bytes) -> tuple[dict[str, Any], GenerateContentRequest]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(error_response(400, f"Invalid JSON payload received. {exc}")) from exc
    if not isinstance(data, dict):
        raise BadRequest(error_response(400, "Invalid JSON payload received. Expected an object."))
    try:
        req = GenerateContentRequest.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(error_response(400, validation_message(exc, "* GenerateContentRequest."))) from exc
    aspect = _aspect(req.generationConfig)
    if aspect is not None and aspect not in content.ASPECT_RATIOS:
        allowed = ", ".join(sorted(content.ASPECT_RATIOS))
        raise BadRequest(
            error_response(
                400, f"* GenerateContentRequest.generationConfig.imageConfig.aspectRatio: must be one of {allowed}"
            )
        )
    return data, req


def _wants_image(model: str, req: GenerateContentRequest) -> bool:
    modalities = {m.upper() for m in req.generationConfig.responseModalities or []}
    return "IMAGE" in modalities or ("image" in model.lower() and modalities != {"TEXT"})


def _answer_text(prompt: content.Prompt, req: GenerateContentRequest, image: bool, invalid: bool) -> str:
    if invalid and image:
        return "I'm unable to create that image right now."  # no picture at all: the worker must notice
    if invalid:
        return content.invalid_answer(prompt)
    text = content.answer_text(prompt)
    if req.generationConfig.responseMimeType == "application/json" and prompt.kind not in content.JSON_KINDS:
        return json.dumps({"text": text})  # JSON mode always answers JSON
    return text


def _sse(chunk: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\r\n\r\n".encode()


def routes(state: StandinState) -> list[BaseRoute]:
    async def stream_body(chunks: list[dict[str, Any]], timing: Timing) -> AsyncIterator[bytes]:
        try:
            for i, chunk in enumerate(chunks):
                if i:
                    await state.knobs.between_deltas()
                yield _sse(chunk)
        finally:  # also when the client leaves mid-stream
            timing.end()

    async def generate(request: Request) -> Response:
        received = time.time()
        raw = await request.body()
        data: Any = raw.decode(errors="replace")
        model = request.path_params["target"].partition(":")[0]
        try:
            _check_key(request)
            model, action = _target(request)
            data, req = _validate(raw)
        except BadRequest as exc:
            state.log.add(
                provider="gemini",
                path=request.url.path,
                model=model,
                job_kind=None,
                stream=False,
                fault=None,
                status=exc.response.status_code,
                headers=logged_headers(request),
                body=data,
            )
            return exc.response
        prompt = to_prompt(model, req)
        stream = action == "streamGenerateContent"
        outcome = await take_fault(
            state,
            request,
            "gemini",
            raw,
            model=model,
            job_kind=prompt.kind,
            stream=stream,
            body=data,
            error_response=fault_response,
            received=received,
        )
        if outcome.early is not None:
            return outcome.early
        spec, timing = outcome.spec, outcome.timing
        timing.latency_ms = await state.knobs.before_answer()
        image = _wants_image(model, req)
        invalid = spec is not None and spec.kind == "invalid_json"
        text = _answer_text(prompt, req, image, invalid)
        answer = Answer(model, req, prompt, text, image and not invalid)
        dropped = spec is not None and spec.kind == "disconnect"
        if stream and request.query_params.get("alt") == "sse":
            chunks = answer.chunks()
            if dropped:
                timing.end()
                return DroppedConnection(
                    b"".join(_sse(c) for c in chunks[: max(1, len(chunks) // 3)]), "text/event-stream"
                )
            return StreamingResponse(stream_body(chunks, timing), media_type="text/event-stream")
        body = answer.chunks() if stream else answer.response()
        response: Response
        if dropped:
            full = json.dumps(body).encode()
            response = DroppedConnection(full[: len(full) // 2], "application/json")
        else:
            response = JSONResponse(body)
        timing.end()  # the body is rendered; sending it is the server's part
        return response

    return [Route("/{version}/models/{target}", generate, methods=["POST"])]
