"""The emulator's ASGI application."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from airflow_batches.emulator import admin_routes, api_routes, count_tokens_route
from airflow_batches.emulator.gate import ApiGate
from airflow_batches.emulator.responses import EmulatorError, error_response, request_id_of
from airflow_batches.emulator.settings import FaultSettings, ServerSettings
from airflow_batches.emulator.state import EmulatorState

__all__ = ["create_app"]


async def _emulator_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EmulatorError)
    return error_response(exc.status, exc.message, request_id_of(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, request_id_of(request))


def create_app(settings: ServerSettings | None = None, faults: FaultSettings | None = None) -> FastAPI:
    """A fresh emulator with its own state (batches, clock, settings), reachable as ``app.state.emulator``."""
    state = EmulatorState(settings or ServerSettings(), faults or FaultSettings())
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.emulator = state
    app.include_router(api_routes.router)
    app.include_router(count_tokens_route.router)
    app.include_router(admin_routes.router)
    app.add_exception_handler(EmulatorError, _emulator_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(ApiGate, state=state)
    return app
