"""A handler: a kind, its payload and result models (JSON Schema for the TS client), and a run function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.core.context import JobContext
from worker.core.errors import InvalidOutput, InvalidPayload, describe_validation


class AnsweredBy(BaseModel):
    """The model that gave a job's last answer."""

    model_config = ConfigDict(extra="forbid", title="AnsweredBy")

    provider: str
    model: str
    fallback: bool = Field(description="true when a model after the first of the kind's chain answered")
    cooldown_wait_s: float = Field(
        default=0.0,
        ge=0,
        description="seconds the job waited in the worker for every model of its chain to take calls again "
        "(a cooldown after a 429/529); a longer wait defers the job instead (PROVIDER_MAX_WAIT_SECONDS)",
    )


class JobResult(BaseModel):
    """Base of every kind's result model: the fields the worker adds to each result itself (a
    handler leaves them unset), so the result schema, and the plugin's types, declare them."""

    model: AnsweredBy | None = Field(
        default=None, description="The model that answered (set by the worker when a model was called)"
    )


P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", bound=JobResult)


@dataclass(frozen=True)
class Handler(Generic[P, R]):
    kind: str
    payload: type[P]
    result: type[R]
    run: Callable[[P, JobContext], Awaitable[R]]

    async def __call__(self, raw: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        try:
            payload = self.payload.model_validate(raw)
        except ValidationError as exc:
            raise InvalidPayload(f"payload: {describe_validation(exc)}") from exc
        result = await self.run(payload, ctx)
        # The result model is the contract with the plugin. A handler builds its result with the
        # model's constructor (never model_construct), which validated it, and the model answer
        # in it was validated when parsed: checking it again cost a deep validation and a dump per
        # job (issue 14: no validation repeated on the hot path). Only its type is checked here.
        if type(result) is not self.result:
            raise InvalidOutput(f"result: expected {self.result.__name__}, got {type(result).__name__}")
        dumped: dict[str, Any] = result.model_dump(mode="json", exclude_none=True)
        return dumped
