"""Ask a model for JSON matching a pydantic model, with exactly one repair round."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from worker.core.errors import InvalidOutput, describe_validation
from worker.core.llm import ModelChain
from worker.core.ports import TextRequest

T = TypeVar("T", bound=BaseModel)


class AnswerError(ValueError):
    """The answer is not JSON of the expected shape; the message says what is wrong."""


def parse_answer(text: str, model: type[T]) -> T:
    # Models like to wrap JSON in prose or a ```json fence: take the outermost object or array
    # (a fence holds no bracket, so it falls outside; a regex stripping fences first cost 11x the
    # json.loads of a 2 KB answer, scanning every run of whitespace for a closing fence).
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise AnswerError("the answer contains no JSON object or array")
    start = min(starts)
    end = max(text.rfind("}"), text.rfind("]"))
    try:
        value = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise AnswerError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise AnswerError(f"JSON does not match the schema: {describe_validation(exc)}") from exc


def repair_prompt(problem: str) -> str:
    return (
        f"Your previous answer could not be used: {problem}. "
        "Reply again with only the corrected JSON, no prose and no code fences."
    )


async def ask_json(model: ModelChain, request: TextRequest, shape: type[T], answer: str | None = None) -> T:
    """Parse ``answer`` (or ask for one); on a bad answer, one repair round, then InvalidOutput."""
    text = answer if answer is not None else await model.complete(request)
    try:
        return parse_answer(text, shape)
    except AnswerError as first:
        repaired = await model.complete(request.followed_by(text, repair_prompt(str(first))))
        try:
            return parse_answer(repaired, shape)
        except AnswerError as second:
            raise InvalidOutput(f"model output invalid after one repair round: {second}") from second
