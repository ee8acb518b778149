"""JSON responses in the API's shapes: models serialized as ``application/json``, and the error envelope."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from airflow_batches.api.models import ErrorDetail, ErrorResponse

__all__ = ["ERROR_TYPES", "EmulatorError", "error_json", "error_response", "model_response", "request_id_of"]

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class EmulatorError(Exception):
    """Raised by a handler to answer with the error envelope."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def request_id_of(request: Request) -> str | None:
    """The id the gate gave this request (also sent as the ``request-id`` header)."""
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def model_response(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


def error_json(envelope: ErrorResponse) -> str:
    """The envelope as the API sends it: ``error.details`` only when there are details."""
    exclude = {"error": {"details"}} if envelope.error.details is None else None
    return envelope.model_dump_json(exclude=exclude)


def error_response(
    status: int, message: str, request_id: str | None, headers: Mapping[str, str] | None = None
) -> Response:
    envelope = ErrorResponse(
        error=ErrorDetail(type=ERROR_TYPES.get(status, "api_error"), message=message), request_id=request_id
    )
    return Response(error_json(envelope), status_code=status, media_type="application/json", headers=headers)
