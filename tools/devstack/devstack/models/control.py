"""The ``/_standin`` control API: faults, knobs, the logs and reset, each body checked with a
precise message (422 ``invalid_control_request``)."""

from __future__ import annotations

import json
import time
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from devstack.models.faults import StandinState
from devstack.models.knobs import ConfigSpec, FaultSpec, Knobs
from devstack.models.request_log import TIMINGS_PAGE

M = TypeVar("M", bound=BaseModel)


def _problem(message: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse({"error": "invalid_control_request", "message": message, "errors": errors or []}, 422)


async def _parse(request: Request, model: type[M]) -> M | JSONResponse:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        return _problem(f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _problem("body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return _problem("; ".join(f"{e['loc'] or 'body'}: {e['msg']}" for e in errors), errors)


def control_routes(state: StandinState) -> list[BaseRoute]:
    async def add_fault(request: Request) -> Response:
        spec = await _parse(request, FaultSpec)
        if isinstance(spec, JSONResponse):
            return spec
        return JSONResponse(state.faults.add(spec).to_json(), 201)

    async def list_faults(_request: Request) -> Response:
        pending = state.faults.pending()
        return JSONResponse({"count": len(pending), "faults": pending})

    async def clear_faults(_request: Request) -> Response:
        return JSONResponse({"cleared": state.faults.clear()})

    async def requests_log(request: Request) -> Response:
        entries = state.log.select(request.query_params.get("provider"))
        return JSONResponse({"count": len(entries), "requests": entries})

    async def clear_requests(_request: Request) -> Response:
        state.log.entries.clear()
        return JSONResponse({"cleared": True})

    async def get_config(_request: Request) -> Response:
        return JSONResponse(state.knobs.to_json())

    async def set_config(request: Request) -> Response:
        spec = await _parse(request, ConfigSpec)
        if isinstance(spec, JSONResponse):
            return spec
        problem = spec.problem()
        if problem is not None:  # nothing is applied from a refused body
            loc, msg = problem
            return _problem(f"{loc}: {msg}", [{"loc": loc, "msg": msg}])
        state.knobs.apply(spec)
        return JSONResponse(state.knobs.to_json())

    async def timings(request: Request) -> Response:
        bounds = {"after": (0, 2**62), "limit": (1, TIMINGS_PAGE)}
        values = {"after": 0, "limit": TIMINGS_PAGE}
        for name, (lo, hi) in bounds.items():
            raw = request.query_params.get(name)
            if raw is None:
                continue
            if not raw.isdigit() or not lo <= int(raw) <= hi:
                msg = f"must be an integer from {lo} to {hi}, got {raw!r}"
                return _problem(f"{name}: {msg}", [{"loc": name, "msg": msg}])
            values[name] = int(raw)
        return JSONResponse(state.timings.page(values["after"], values["limit"]))

    async def clear_timings(_request: Request) -> Response:
        return JSONResponse({"cleared": state.timings.clear()})

    async def reset(_request: Request) -> Response:
        state.faults.clear()
        state.log.entries.clear()
        state.timings.clear()
        state.knobs = Knobs.from_env()
        return JSONResponse({"reset": True, "config": state.knobs.to_json()})

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "uptime_s": round(time.monotonic() - started, 3)})

    started = time.monotonic()
    return [
        Route("/_standin/health", health, methods=["GET"]),
        Route("/_standin/faults", add_fault, methods=["POST"]),
        Route("/_standin/faults", list_faults, methods=["GET"]),
        Route("/_standin/faults", clear_faults, methods=["DELETE"]),
        Route("/_standin/requests", requests_log, methods=["GET"]),
        Route("/_standin/requests", clear_requests, methods=["DELETE"]),
        Route("/_standin/config", get_config, methods=["GET"]),
        Route("/_standin/config", set_config, methods=["POST"]),
        Route("/_standin/timings", timings, methods=["GET"]),
        Route("/_standin/timings", clear_timings, methods=["DELETE"]),
        Route("/_standin/reset", reset, methods=["POST"]),
    ]
