"""Error classification: SDK exceptions -> typed failures -> what the queue is told to do."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import anthropic
import httpx2
import pytest
from google.genai import errors as genai_errors

from worker.core.errors import (
    InternalError,
    InvalidArgument,
    InvalidOutput,
    LeaseLost,
    PermanentFailure,
    RateLimited,
    StoreUnavailable,
    TransientFailure,
    store_error,
)
from worker.core.job_runner import Deferred, Failed, Stopped, outcome_of_error
from worker.core.ports import ModelUsage
from worker.providers import claude, gemini

REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/messages")


def anthropic_error(status: int, headers: dict[str, str] | None = None) -> anthropic.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    body = {"type": "error", "error": {"type": "x", "message": f"status {status} says no"}}
    cls: dict[int, type[anthropic.APIStatusError]] = {
        400: anthropic.BadRequestError,
        401: anthropic.AuthenticationError,
        429: anthropic.RateLimitError,
        500: anthropic.InternalServerError,
        503: anthropic.ServiceUnavailableError,
        529: anthropic.OverloadedError,
    }
    return cls[status](f"status {status}", response=response, body=body)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, PermanentFailure),
        (401, PermanentFailure),
        (429, RateLimited),
        (529, RateLimited),
        (500, TransientFailure),
        (503, TransientFailure),
    ],
)
def test_anthropic_status_errors(status: int, expected: type[Exception]) -> None:
    failure = claude.classify(anthropic_error(status, {"retry-after": "7"}))
    assert type(failure) is expected
    assert failure is not None and f"status {status} says no" in failure.message
    if isinstance(failure, RateLimited):
        assert failure.retry_after == 7


def test_anthropic_rate_limit_without_retry_after_uses_a_default() -> None:
    failure = claude.classify(anthropic_error(429))
    assert isinstance(failure, RateLimited) and failure.retry_after == claude.DEFAULT_RETRY_AFTER


def test_connection_errors_and_raw_transport_errors_are_transient() -> None:
    assert isinstance(claude.classify(anthropic.APITimeoutError(request=REQUEST)), TransientFailure)
    assert isinstance(claude.classify(httpx2.RemoteProtocolError("peer closed")), TransientFailure)
    assert isinstance(gemini.classify(httpx2.ReadTimeout("slow")), TransientFailure)
    # An aiohttp error the anthropic SDK's aiohttp transport lets through unmapped.
    assert isinstance(claude.classify(aiohttp.ServerDisconnectedError()), TransientFailure)
    assert claude.classify(ValueError("not ours")) is None


def gemini_error(code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> genai_errors.APIError:
    response = httpx2.Response(code, headers=headers or {}, request=REQUEST)
    cls = genai_errors.ClientError if code < 500 else genai_errors.ServerError
    return cls(code, body, response)


def test_gemini_errors() -> None:
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}
    limited = gemini.classify(
        gemini_error(
            429,
            {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down", "details": [retry_info]}},
        )
    )
    assert isinstance(limited, RateLimited) and limited.retry_after == 12
    unavailable = gemini.classify(gemini_error(503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "x"}}))
    assert isinstance(unavailable, TransientFailure)
    bad = gemini.classify(gemini_error(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "no"}}))
    assert isinstance(bad, PermanentFailure) and not bad.retryable


class Clock:
    def now(self) -> datetime:
        return datetime(2026, 11, 23, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        return None


def test_outcomes_of_handler_errors() -> None:
    clock = Clock()
    deferred = outcome_of_error(RateLimited("429", retry_after=30), clock)
    assert deferred == Deferred(clock.now() + timedelta(seconds=30), "provider rate limit (429)")
    spread = outcome_of_error(RateLimited("429", retry_after=30), clock, jitter=1.0)
    assert isinstance(spread, Deferred) and spread.run_at == clock.now() + timedelta(seconds=31)  # at most 1 s later
    huge = outcome_of_error(RateLimited("429", retry_after=10**7), clock)
    assert isinstance(huge, Deferred) and huge.run_at - clock.now() < timedelta(days=1)  # defer_job's bound
    tiny = outcome_of_error(RateLimited("429", retry_after=0), clock)
    assert isinstance(tiny, Deferred) and tiny.run_at - clock.now() == timedelta(seconds=1)
    failed = outcome_of_error(InvalidOutput("bad json"), clock)
    assert isinstance(failed, Failed) and failed.failure.retryable is False
    assert failed.failure.to_error() == {"type": "invalid_output", "message": "bad json"}
    assert outcome_of_error(LeaseLost("gone"), clock) == Stopped("lost")
    transient = outcome_of_error(StoreUnavailable("down"), clock)
    assert isinstance(transient, Failed) and transient.failure.retryable
    bug = outcome_of_error(KeyError("x"), clock)
    assert isinstance(bug, Failed) and isinstance(bug.failure, InternalError) and bug.failure.retryable


def test_errors_from_concurrent_parts_are_classified_by_the_one_that_decides() -> None:
    """rename_layers runs its batches in a TaskGroup, which wraps failures in an ExceptionGroup:
    a 429 in one batch must still defer the job, not spend an attempt as an internal error."""
    clock = Clock()

    def group(*errors: Exception) -> ExceptionGroup[Exception]:
        return ExceptionGroup("unhandled errors in a TaskGroup", list(errors))

    assert isinstance(outcome_of_error(group(RateLimited("429", retry_after=5)), clock), Deferred)
    nested = group(KeyError("x"), group(TransientFailure("503"), RateLimited("429", retry_after=5)))
    assert isinstance(outcome_of_error(nested, clock), Deferred)
    assert outcome_of_error(group(RateLimited("429", retry_after=5), LeaseLost("gone")), clock) == Stopped("lost")
    permanent = outcome_of_error(group(TransientFailure("503"), InvalidOutput("bad json")), clock)
    assert isinstance(permanent, Failed) and permanent.failure.retryable is False
    transient = outcome_of_error(group(KeyError("x"), TransientFailure("503")), clock)
    assert isinstance(transient, Failed) and transient.failure.type == "provider_unavailable"
    bug = outcome_of_error(group(KeyError("x")), clock)
    assert isinstance(bug, Failed) and isinstance(bug.failure, InternalError)


def test_store_errors_by_sqlstate() -> None:
    assert isinstance(store_error("PT409", "lease lost"), LeaseLost)
    assert store_error("22023", "bad").code == "22023"
    # A body the REST layer refuses (too deep, too many values) is the arguments' fault too.
    assert isinstance(store_error("PGRST102", "too many values"), InvalidArgument)
    assert type(store_error("XX000", "other")).__name__ == "StoreError"
    assert str(uuid.UUID(int=0)) in str(store_error("PT404", f"job {uuid.UUID(int=0)} not found"))


def _read(events: Sequence[tuple[str | None, dict[str, Any] | str]]) -> tuple[list[str], claude.StreamReader]:
    reader = claude.StreamReader()
    pieces = []
    for event, data in events:
        piece = reader.text_of(event, data if isinstance(data, str) else json.dumps(data))
        if piece is not None:
            pieces.append(piece)
    return pieces, reader


START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "usage": {
            "input_tokens": 100,
            "output_tokens": 1,
            "cache_read_input_tokens": 40,
            "cache_creation_input_tokens": 10,
            "service_tier": "a tier the SDK does not know yet",
        },
    },
}


def _text(text: str) -> tuple[str, dict[str, Any]]:
    delta = {"type": "text_delta", "text": text}
    return "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}


def test_a_raw_streams_text_is_its_text_deltas_in_order_and_nothing_else() -> None:
    thinking = {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}}
    pieces, _ = _read(
        [
            ("message_start", START),
            ("ping", {"type": "ping"}),
            ("content_block_delta", thinking),
            _text("Hello, "),
            (None, "a line without an event name"),
            ("a_new_event", {"type": "a_new_event"}),
            _text("world"),
            ("message_stop", {"type": "message_stop"}),
        ]
    )
    assert pieces == ["Hello, ", "world"]


def test_a_raw_streams_usage_takes_message_deltas_cumulative_counts_over_message_starts() -> None:
    def usage(*deltas: dict[str, Any]) -> ModelUsage:
        events = [("message_start", START), *(("message_delta", {"type": "message_delta", "usage": d}) for d in deltas)]
        return _read(events)[1].usage()

    # input_tokens of the result counts every prompt token: 100 + 40 read + 10 written.
    assert usage() == ModelUsage(input_tokens=150, output_tokens=1, cached_tokens=40)
    # A delta with only output_tokens (the usual one): the prompt counts of message_start stay.
    assert usage({"output_tokens": 250}) == ModelUsage(150, 250, 40)
    # Counts a delta does carry are totals that replace message_start's, never add to them.
    later = {"output_tokens": 250, "input_tokens": 120, "cache_read_input_tokens": 60}
    assert usage({"output_tokens": 9}, later) == ModelUsage(input_tokens=190, output_tokens=250, cached_tokens=60)


def test_a_stream_without_message_start_bills_nothing_and_is_worth_another_attempt() -> None:
    _, reader = _read([_text("orphan")])
    with pytest.raises(TransientFailure, match="without a message_start"):
        reader.usage()


@pytest.mark.parametrize(
    ("error_type", "failure", "status"),
    [
        ("overloaded_error", RateLimited, 529),
        ("rate_limit_error", RateLimited, 429),
        ("api_error", TransientFailure, 500),
        ("an_error_type_added_later", TransientFailure, 500),
        ("invalid_request_error", PermanentFailure, 400),
    ],
)
def test_an_error_event_after_the_200_is_classified_by_its_error_type(
    error_type: str, failure: type[Exception], status: int
) -> None:
    error = {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}
    with pytest.raises(failure) as raised:
        _read([("message_start", START), _text("half an answer"), ("error", error)])
    assert type(raised.value) is failure
    assert f"anthropic {status}: {error_type} during the stream: Overloaded" in str(raised.value)
    if failure is RateLimited:
        assert isinstance(raised.value, RateLimited) and raised.value.retry_after == claude.DEFAULT_RETRY_AFTER


def test_an_event_that_cannot_be_read_is_a_transient_failure_naming_the_event_and_field() -> None:
    bad = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 7}}
    with pytest.raises(TransientFailure, match=r"unreadable content_block_delta event: delta\.text"):
        _read([("message_start", START), ("content_block_delta", bad)])
    with pytest.raises(TransientFailure, match="unreadable message_start event"):
        _read([("message_start", "not json")])


def test_a_responses_text_and_usage_are_read_from_its_json_whatever_else_it_carries() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "…", "signature": "s"},
            {"type": "text", "text": "Hello, "},
            {"type": "tool_use", "id": "t", "name": "n", "input": {}},
            {"type": "text", "text": "world", "citations": None},
        ],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 100,
            "output_tokens": 7,
            "cache_read_input_tokens": 40,
            "cache_creation_input_tokens": None,
            "service_tier": "a tier this SDK does not know",
        },
        "a_field_added_later": [1, 2],
    }
    text, usage = claude.read_answer(json.dumps(body).encode())
    assert text == "Hello, world"
    assert usage == ModelUsage(input_tokens=140, output_tokens=7, cached_tokens=40)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"<html>502 Bad Gateway</html>", "(root)"),  # describe_validation names the root so
        (b'{"content": [], "usage": {"input_tokens": 1}}', "usage.output_tokens"),
        (b'{"content": [{"text": "no type"}], "usage": {"input_tokens": 1, "output_tokens": 1}}', "content.0.type"),
        (b'{"content": "not a list", "usage": {"input_tokens": 1, "output_tokens": 1}}', "content"),
    ],
)
def test_a_response_that_is_not_a_message_is_a_transient_failure_naming_what_is_wrong(body: bytes, where: str) -> None:
    with pytest.raises(TransientFailure, match=rf"anthropic: unreadable response: {re.escape(where)}: "):
        claude.read_answer(body)
