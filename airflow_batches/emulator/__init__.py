"""A local, faithful Message Batches API server for tests, demos and CI (loopback only).

Run it::

    python -m airflow_batches.emulator --host 127.0.0.1 --port 0 --processing-seconds 0

It prints exactly one line, ``airflow-batches emulator listening on http://HOST:PORT``, once it accepts
connections, and serves until SIGTERM/SIGINT (exit code 0). Point any client at that base URL, including the
official SDK: ``anthropic.Anthropic(api_key="any", base_url=url)``. In Python tests use
:func:`airflow_batches.emulator.testing.run_emulator`.

Flags (every one except host/port/log level can also be changed at run time, see admin endpoints)
------------------------------------------------------------------------------------------------------
Behaviour (``POST /_emulator/config``):

``--api-key KEY``
    require this key (``x-api-key`` or ``Authorization: Bearer``); without it any
    non-empty key is accepted. No key at all is always 401.
``--processing-seconds S``
    time a batch stays ``in_progress`` after create (default 2).
``--cancel-seconds S``
    time a canceled batch stays ``canceling`` (default 1).
``--[no-]require-version``
    a missing ``anthropic-version`` is 400 (default on). ``2023-06-01`` and
    ``2026-10-21`` are accepted; any other value is 400.
``--max-body-bytes N``
    create bodies above N bytes get 413 ``request_too_large`` (default
    256,000,000), judged from ``content-length`` or while reading the body.
``--[no-]html-413``
    send the 413 as an edge proxy's HTML page instead of the JSON envelope.
``--params-validation sync|per_request``
    bad ``params`` fail the whole create with 400 (``sync``, default) or
    become ``errored`` results (``per_request``). Problems with ``custom_id``,
    the request count or the body's JSON are always a 400.
``--cancel-ended-status 400|409``
    status of cancel on an ended batch (default 400 invalid_request_error).
``--archived-results-status 404|400``
    status of results on an archived batch (default 404 not_found_error).
``--[no-]clear-results-url-on-archive``
    ``results_url`` becomes null once archived (default: kept).
``--invalid-output-rate R``
    share (0..1, default 0) of the requests asking for structured output whose answer breaks the schema
    (its first field gets the wrong type). Chosen by a hash of the custom_id, so the same custom_ids every
    time: ``airflow_batches.emulator.structured_answer.invalid_output_chosen(custom_id, R)`` tells which.
``--results-base-url URL``
    ``results_url`` is ``URL/v1/messages/batches/{id}/results`` instead of this server's own URL, as a
    client behind a gateway sees it (the gateway passes the API's JSON through unchanged). The results
    path itself is still served here.

Faults, applied to API requests only (``POST /_emulator/faults``):

``--latency-ms MS``
    delay before every API response.
``--fail-rate R``
    share (0..1) of requests answered with ``--fail-status``.
``--fail-status 429|500|504|529``
    status of injected failures (default 429), with the matching error type.
``--fail-first N``
    fail exactly the next N requests (then ``--fail-rate`` applies).
``--fail-ops create,retrieve,...``
    operations faults apply to (default all six).
``--seed N``
    seed of the ``--fail-rate`` draws.
``--retry-after-seconds S``
    ``retry-after`` (whole seconds, rounded up) and ``retry-after-ms`` on
    injected failures (default 1; set it to 0.05 for fast tests).
``--retry-after-mode both|seconds|ms|date``
    which delay headers injected failures carry: ``both`` (default)
    ``retry-after`` and ``retry-after-ms``; ``seconds`` only ``retry-after``;
    ``ms`` only ``retry-after-ms``; ``date`` only ``retry-after`` as an
    HTTP-date (real time, not the emulated clock, rounded up to the second).
``--[no-]should-retry``
    add ``x-should-retry: true|false`` to injected failures (default: absent).
``--cut-results-after BYTES``
    drop the connection after BYTES bytes of a results body (the client sees
    an incomplete chunked read); a shorter body is sent whole.
``--cut-results-times N``
    cut only the next N results downloads (default: every one).
``--slow-results-ms MS``
    pause before each results line (one line per chunk).
``--results-drop-lines N``
    leave out the last N results lines: the body ends cleanly at a line
    boundary but is short of the batch's ``request_counts`` (default 0).
``--[no-]results-duplicate-line``
    send the first results line twice in a row (default off).
``--transient-errored-rate R``, ``--transient-error-type TYPE``
    share (0..1) of requests that come back ``errored`` with TYPE (default
    ``overloaded_error``) on their first submission and run normally when
    submitted again (a resubmit round). Which requests: a deterministic draw
    per ``custom_id``, so any split of the same input fails the same ids.
``--transient-expired-rate R``
    share (0..1) of requests that come back ``expired`` on their first
    submission (when the batch ends, not at 24 h) and run normally when
    submitted again. The two rates add up to at most 1.
``--transient-seed N``
    seed of those draws (default 0). The ids that failed once are
    remembered until ``/_emulator/reset``.

Admin endpoints (not part of the real API; no auth; JSON in and out)
--------------------------------------------------------------------
``GET /_emulator/clock``, ``POST /_emulator/clock/advance {"seconds": N}``
    read the clock; move it forward by N >= 0 seconds.
``POST /_emulator/reset``
    drop all batches; counters, clock and settings back to startup values.
``GET|POST /_emulator/config``
    behaviour settings (POST changes only the keys given; the key is never
    shown, only ``api_key_required``).
``GET|POST /_emulator/faults``
    fault settings; GET also shows ``fail_first_remaining`` and
    ``cut_results_remaining``. Posting ``fail_first``/``seed``/``cut_results_*``
    restarts that counter.
``GET /_emulator/stats``
    ``batches_created`` (ever, since start or reset), ``batches_stored``,
    ``requests`` per operation (``create``, ``retrieve``, ``list``, ``cancel``,
    ``delete``, ``results``, ``count_tokens``, ``other``), ``faults_injected``,
    ``results_cut``.

Per-request switches: ``params.metadata.emulator``
--------------------------------------------------
``"error"``
    the request ends ``errored`` (an ``invalid_request_error`` envelope).
``"expire"``
    the request never finishes: the batch stays ``in_progress`` until its 24 h expiry, when
    the request becomes ``expired``; cancel the batch first and it becomes ``canceled``.
``"uncancelable"``
    the request finishes even if the batch is canceled (``succeeded`` in a canceled batch).
Any other value is a 400 naming the switches.

What each request becomes, by how the batch ended (counts move only at that moment):

=============  =========  =============================  =========
kind           processed  expired (processing >= 24 h)   canceled
=============  =========  =============================  =========
normal         succeeded  expired                        canceled
error          errored    expired                        canceled
expire         expired    expired                        canceled
uncancelable   succeeded  expired                        succeeded
invalid params errored    errored                        errored
transient err  errored    expired                        canceled
transient exp  expired    expired                        canceled
=============  =========  =============================  =========

The fake model
--------------
The reply is one text block echoing the text of the last ``user`` message (a string, or its ``text`` blocks
joined). A request asking for structured output (``output_config.format`` with a ``json_schema``, the beta
``output_format``, or ``tool_choice`` forcing one of its ``tools``) is answered with JSON built from the
schema (strings from the prompt, the first ``enum`` value, integers the prompt's length, ...): as the text, or
as that tool's ``tool_use`` block with ``stop_reason: "tool_use"``. Tokens are one per 4 characters, rounded
up, at least 1: ``input_tokens`` counts every message and the system prompt; a reply over ``max_tokens`` is
cut to ``4 * max_tokens`` characters with ``stop_reason: "max_tokens"``. ``usage.service_tier`` is
``"batch"``. ``POST /v1/messages/count_tokens`` counts a request's input the same way, so it returns exactly
the ``input_tokens`` its batch result will report (unknown top-level fields are a 400, as in the API: the
generation settings such as ``max_tokens`` are not accepted there). Message ids derive from batch id +
custom_id, so downloading results twice gives identical bytes. Results come in reverse input order (match by
``custom_id``).

Choices where the API's documentation leaves the behaviour open
---------------------------------------------------------------
- missing ``anthropic-version``: 400 invalid_request_error (``--no-require-version`` accepts it).
- duplicate ``custom_id``: synchronous 400 naming both positions.
- ``params`` validation: synchronous 400 for missing ``model``/``max_tokens``/``messages``,
  ``max_tokens < 1``, ``stream: true`` and malformed messages (``--params-validation per_request`` makes
  them ``errored`` results). Other parameters are not checked.
- cancel on ``canceling``: 200 with the batch unchanged; cancel on ``ended``: 400 (or 409).
- delete before ``ended``: 400 invalid_request_error; unknown or deleted id: 404 not_found_error.
- results before ``ended``: 400 invalid_request_error; archived: 404 not_found_error with an "archived"
  message (or 400).
- 413 body: the JSON envelope (or an HTML page with ``--html-413``).
- ``results_url`` on archive: kept (or null with ``--clear-results-url-on-archive``).
- ``usage.service_tier``: ``"batch"``.
- ``before_id`` with ``after_id``: 400. ``limit`` outside 1-1000 or not an integer: 400. A cursor id this
  emulator never created: 400 (a deleted batch's id still works as a cursor).

Timing: ``ended_at`` is the moment processing ended (creation + processing time, cancel + cancel time, or
expiry), not the moment someone looked. ``archived_at`` is creation + 29 days. Create bodies are spooled to a
private temporary directory (removed at exit) and only ``custom_id``, a one-byte kind and the request's
location in that file are kept in memory per request. The first whole read of an ended batch's results keeps
the bytes it sent in that directory, and later reads (with the same content fault settings and
``invalid_output_rate``) are sent from that file, so a download runs at the speed of the connection rather
than of the emulator's rendering; reads with ``--slow-results-ms`` or a cut are rendered line by line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_batches.emulator.app import create_app
    from airflow_batches.emulator.settings import FaultSettings, ServerSettings
    from airflow_batches.emulator.testing import RunningEmulator, run_emulator

__all__ = ["FaultSettings", "RunningEmulator", "ServerSettings", "create_app", "run_emulator"]

# Lazy, so that tests importing only ``testing`` (httpx) do not load the server stack (FastAPI, uvicorn).
_MODULES = {
    "create_app": "airflow_batches.emulator.app",
    "FaultSettings": "airflow_batches.emulator.settings",
    "ServerSettings": "airflow_batches.emulator.settings",
    "RunningEmulator": "airflow_batches.emulator.testing",
    "run_emulator": "airflow_batches.emulator.testing",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
