"""``POST /v1/messages/count_tokens``: the free token count, with the fake model's tokenizer.

It accepts what the API accepts (a Messages request without the generation settings) and counts exactly as
the fake model does, so a plan's input tokens equal the ``input_tokens`` the batch results report.
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from airflow_batches.api.models import COUNTED_FIELDS, MessageTokensCount
from airflow_batches.emulator.fake_model import input_tokens
from airflow_batches.emulator.request_rules import messages_problem
from airflow_batches.emulator.responses import EmulatorError, model_response

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request) -> Response:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EmulatorError(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise EmulatorError(400, "Request body must be a JSON object")
    extra = sorted(set(body) - set(COUNTED_FIELDS))
    if extra:
        raise EmulatorError(400, f"{extra[0]}: Extra inputs are not permitted")
    for field in ("model", "messages"):
        if field not in body:
            raise EmulatorError(400, f"{field}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise EmulatorError(400, "model: Input should be a non-empty string")
    problem = messages_problem(body["messages"])
    if problem:
        raise EmulatorError(400, problem.removeprefix("params."))
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise EmulatorError(400, "system: Input should be a valid string or a list of text blocks")
    return model_response(MessageTokensCount(input_tokens=input_tokens(body)))
