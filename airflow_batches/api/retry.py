"""Which failed requests are tried again, and how long to wait first.

The rules follow the official Python SDK (``anthropic``'s ``_base_client``) with two deliberate changes:
a delay the server asks for is capped (``max_retry_delay``) so a bogus header cannot park a worker for
hours, and ``create`` -- a POST that is not idempotent -- is retried only when the failure proves that no
batch was made. Everything that waits goes through the injectable ``sleep``/``random``/``now`` so tests
run on a fake clock.
"""

from __future__ import annotations

import asyncio
import email.utils
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

import httpx

from .errors import APIConnectionError, APIStatusError

__all__ = ["Decision", "RetryPolicy", "exponential_backoff", "is_transient"]

# Statuses the SDK retries (plus every status >= 500).
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
# Answers to a create that show the request was turned away before any batch was made.
_CREATE_REJECTED_STATUSES = frozenset({429, 529})
# 4xx answers that still leave the create's outcome open: the server may have acted on the body.
_CREATE_AMBIGUOUS_4XX = frozenset({408, 409})

# Failures that happen before a single byte of the request left this machine.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transient transport failures worth another attempt on a repeatable request.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class Decision(Enum):
    """What to do with a failed attempt."""

    RETRY = "retry"
    RAISE = "raise"
    AMBIGUOUS = "ambiguous"  # only for create: a batch may exist, so neither retry nor a plain error


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retry rules and delays.

    ``max_retries`` extra attempts after the first (SDK default 2, i.e. at most 3 attempts). Backoff is
    ``min(initial_delay * 2**n, max_backoff) * (1 - 0.25 * random())`` unless the server gives a delay in
    ``retry-after-ms`` / ``retry-after``; that delay is used as given but capped at ``max_retry_delay``.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_backoff: float = 8.0
    max_retry_delay: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    random: Callable[[], float] = field(default=_random.random, repr=False)
    now: Callable[[], float] = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 (0 disables retries), got {self.max_retries}")
        if self.max_retry_delay < 0:
            raise ValueError(f"max_retry_delay must be >= 0 seconds, got {self.max_retry_delay}")

    def decide_status(self, status: int, headers: httpx.Headers, *, creates: bool = False) -> Decision:
        """Decide on an error response. ``creates`` marks the non-idempotent create call."""
        should_retry = headers.get("x-should-retry", "").strip().lower()
        if creates:
            if should_retry == "false":
                return Decision.RAISE
            if status in _CREATE_REJECTED_STATUSES:
                return Decision.RETRY
            if status >= 500 or status in _CREATE_AMBIGUOUS_4XX:
                return Decision.AMBIGUOUS
            # Any other 4xx rejected the body outright; the server's hint may still ask for a retry.
            return Decision.RETRY if should_retry == "true" else Decision.RAISE
        if should_retry == "true":
            return Decision.RETRY
        if should_retry == "false":
            return Decision.RAISE
        return Decision.RETRY if status in _RETRYABLE_STATUSES or status >= 500 else Decision.RAISE

    def decide_transport(self, exc: httpx.TransportError, *, creates: bool = False) -> Decision:
        """Decide on a request that got no response at all."""
        if isinstance(exc, _NOTHING_SENT):
            return Decision.RETRY
        if not isinstance(exc, _TRANSIENT):
            return Decision.RAISE
        return Decision.AMBIGUOUS if creates else Decision.RETRY

    def delay(self, retries_taken: int, headers: httpx.Headers | None = None) -> float:
        """Seconds to wait before retry number ``retries_taken + 1``."""
        server_delay = self._server_delay(headers) if headers is not None else None
        if server_delay is not None:
            return min(server_delay, self.max_retry_delay)
        backoff = exponential_backoff(self.initial_delay, retries_taken, self.max_backoff)
        return float(backoff * (1 - 0.25 * self.random()))

    def _server_delay(self, headers: httpx.Headers) -> float | None:
        milliseconds = _parse_float(headers.get("retry-after-ms"))
        if milliseconds is not None and milliseconds > 0:
            return milliseconds / 1000
        retry_after = headers.get("retry-after")
        if retry_after is None:
            return None
        seconds = _parse_float(retry_after)
        if seconds is None:
            try:
                when = email.utils.parsedate_to_datetime(retry_after)
            except (TypeError, ValueError):
                return None
            seconds = when.timestamp() - self.now()
        return seconds if seconds > 0 else None


def exponential_backoff(first: float, attempt: int, cap: float = float("inf")) -> float:
    """``first * 2**attempt`` seconds, at most ``cap``: the one backoff curve of the client's retries, the
    waiters' failed polls and the landing's downloads (each caller adds its own jitter, if any)."""
    return float(min(first * 2**attempt, cap))


_DEFAULT_RULES = RetryPolicy()


def is_transient(exc: BaseException) -> bool:
    """Whether a failed call may succeed later: no response at all, or a status the API asks clients to retry
    (408, 409, 429, 5xx, 529). Everything that waits on batches (trigger, sensor, create's state check, the
    results landing) decides with this one rule, after the client's own retries are spent."""
    if isinstance(exc, APIConnectionError):
        return True
    return (
        isinstance(exc, APIStatusError)
        and _DEFAULT_RULES.decide_status(exc.status_code, httpx.Headers()) is Decision.RETRY
    )


def _parse_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    # float() accepts "nan" and "inf"; neither is a usable delay.
    return number if number == number and number not in (float("inf"), float("-inf")) else None
