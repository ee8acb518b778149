"""Admin endpoints under ``/_emulator/``: not part of the real API, no auth, for tests and demos."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from airflow_batches.emulator.api_routes import state_of
from airflow_batches.emulator.responses import EmulatorError

__all__ = ["router"]

router = APIRouter(prefix="/_emulator")


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise EmulatorError(400, f"admin request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise EmulatorError(400, "admin request body should be a JSON object")
    return body


def _invalid_settings(exc: ValidationError) -> EmulatorError:
    problems = "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())
    return EmulatorError(400, f"invalid settings: {problems}")


def _clock_json(request: Request) -> Response:
    clock = state_of(request).clock
    return JSONResponse({"now": clock.now().isoformat(), "offset_seconds": clock.offset_seconds})


@router.get("/clock")
async def get_clock(request: Request) -> Response:
    return _clock_json(request)


@router.post("/clock/advance")
async def advance_clock(request: Request) -> Response:
    seconds = (await _json_object(request)).get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise EmulatorError(400, 'send {"seconds": N} with a number N >= 0 (the clock only moves forward)')
    state_of(request).clock.advance(float(seconds))
    return _clock_json(request)


@router.post("/reset")
async def reset(request: Request) -> Response:
    state_of(request).reset()
    return JSONResponse({"reset": True})


@router.get("/stats")
async def stats(request: Request) -> Response:
    return JSONResponse(state_of(request).stats_dict())


@router.get("/faults")
async def get_faults(request: Request) -> Response:
    return JSONResponse(state_of(request).faults.public())


@router.post("/faults")
async def set_faults(request: Request) -> Response:
    faults = state_of(request).faults
    try:
        faults.update(await _json_object(request))
    except ValidationError as exc:
        raise _invalid_settings(exc) from None
    return JSONResponse(faults.public())


@router.get("/config")
async def get_config(request: Request) -> Response:
    return JSONResponse(state_of(request).settings.public())


@router.post("/config")
async def set_config(request: Request) -> Response:
    state = state_of(request)
    try:
        state.settings = state.settings.updated(await _json_object(request))
    except ValidationError as exc:
        raise _invalid_settings(exc) from None
    return JSONResponse(state.settings.public())
