"""Sending one API call: headers, the key only to the base URL's origin, retries, errors.

This is the only place that touches the API key. It is kept in a ``Secret`` (whose repr hides it), added to
a request only when that request goes to the base URL's origin, scrubbed from anything an error keeps, and
never put into the shared ``httpx.AsyncClient``'s default headers. Redirects are not followed, so the key
cannot be carried to wherever a redirect points.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import NoReturn, Protocol

import httpx

from .error_mapping import MAX_ERROR_BODY_BYTES, status_error
from .errors import AmbiguousCreateError, APIConnectionError, APITimeoutError, UnsafeURLError
from .retry import Decision, RetryPolicy
from .stdlib_transport import StdlibTransport, stdlib_transport_applies
from .tls import default_ssl_context

__all__ = ["ApiSession", "BodyStream", "Secret", "origin_of"]

log = logging.getLogger("airflow_batches.api")

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Secret:
    """A string that does not show itself in ``repr``/``str`` (tracebacks, logs, debuggers)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    __str__ = __repr__


class BodyStream(Protocol):
    """A request body read from the start on every attempt, of known size (``SpooledBatch``)."""

    @property
    def nbytes(self) -> int: ...

    def aiter_body(self) -> AsyncIterator[bytes]: ...


def origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme))


class ApiSession:
    """Sends requests under one base URL and key, with the retry policy; returns successful responses."""

    def __init__(
        self,
        *,
        api_key: Secret,
        base_url: httpx.URL,
        client: httpx.AsyncClient,
        owns_client: bool,
        headers: Mapping[str, str],
        retry: RetryPolicy,
        timeout: httpx.Timeout,
        sync_transport: httpx.BaseTransport | bool = False,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry
        self._key = api_key
        self._client = client
        self._owns_client = owns_client
        self._headers = dict(headers)
        self._origin = origin_of(base_url)
        # For send_stream_sync: False when the async client came from outside (its setup is unknown) or
        # its transport is async only; True for httpx's default transport; else the transport itself.
        self._sync_transport = sync_transport
        self._sync_client: httpx.Client | None = None

    async def aclose(self) -> None:
        if self._sync_client is not None:
            self._sync_client.close()
        if self._owns_client:
            await self._client.aclose()

    def url_for(self, path: str) -> httpx.URL:
        """``path`` (e.g. ``v1/messages/batches``) under the base URL, keeping any path prefix it has."""
        return self.base_url.copy_with(
            raw_path=self.base_url.raw_path.rstrip(b"/") + b"/" + path.encode("ascii")
        )

    def results_url(self, results_url: str, canonical_path: str) -> httpx.URL:
        """Where to fetch results: ``results_url`` when it lies under the base URL, else ``canonical_path``.

        Behind a gateway (the base URL) the API's JSON passes through unchanged, so ``results_url`` names
        the API's own host. The key is only ever sent to the base URL's origin, so such a URL is never
        requested: the batch's canonical results path under the base URL is, which the gateway forwards.
        A relative ``results_url`` is joined to the base URL.
        """
        try:
            parsed = httpx.URL(results_url)
        except httpx.InvalidURL as exc:
            raise UnsafeURLError(f"not a usable URL: {results_url!r:.200} ({exc})") from None
        if not (parsed.scheme or parsed.host):
            return self.url_for(results_url.lstrip("/"))
        parsed = self.base_url.join(parsed)  # a scheme-relative "//host/path" gets the base URL's scheme
        prefix = self.base_url.raw_path.rstrip(b"/") + b"/"
        if origin_of(parsed) == self._origin and parsed.raw_path.startswith(prefix):
            return parsed
        canonical = self.url_for(canonical_path)
        log.info(
            "results_url %s is not under the base URL %s (a gateway passes the API's URLs through); "
            "fetching %s instead, so the key goes only to the base URL",
            parsed.copy_with(query=None),
            self.base_url,
            canonical,
        )
        return canonical

    async def request(
        self,
        method: str,
        url: httpx.URL,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | BodyStream | None = None,
        accept: str = "application/json",
        stream: bool = False,
        creates: str | None = None,
    ) -> httpx.Response:
        """Send with retries and return the 2xx response (body read, unless ``stream``: then close it).

        ``creates`` marks the non-idempotent create call and describes what it submitted (for the
        ``AmbiguousCreateError`` message).
        """
        retries = 0
        while True:
            request = self._build(method, url, params, content, accept)
            response: httpx.Response | None = None
            try:
                response = await self._client.send(request, stream=True, follow_redirects=False)
                if response.is_success:
                    if not stream:
                        await response.aread()
                    return response
                body = await _read_capped(response)
            except httpx.TransportError as exc:
                if response is not None:
                    await response.aclose()
                decision = self.retry.decide_transport(exc, creates=creates is not None)
                if decision is Decision.RETRY and retries < self.retry.max_retries:
                    await self._wait(retries, None, f"{type(exc).__name__}", request)
                    retries += 1
                    continue
                self._raise_connection_error(exc, request, retries, decision, creates)
            except BaseException:
                if response is not None:
                    await response.aclose()
                raise
            await response.aclose()
            decision = self.retry.decide_status(
                response.status_code, response.headers, creates=creates is not None
            )
            if decision is Decision.RETRY and retries < self.retry.max_retries:
                await self._wait(retries, response.headers, f"HTTP {response.status_code}", request)
                retries += 1
                continue
            error = status_error(
                response.status_code,
                response.headers,
                body,
                method=method,
                url=str(request.url),
                secret=self._key.reveal(),
            )
            if decision is Decision.AMBIGUOUS:
                raise AmbiguousCreateError(_ambiguous_message(creates, str(error)), cause=error) from error
            raise error

    def send_stream_sync(self, url: httpx.URL, *, accept: str) -> httpx.Response | None:
        """One streamed GET from synchronous code, without an event loop: the 2xx response, its body not
        read yet (the caller closes it); or ``None`` when this session cannot send synchronously, or the one
        attempt failed (no answer, or not a 2xx), so the caller goes the async way (:meth:`request`), whose
        retries and errors apply.

        Reading a big body this way takes a fraction of the CPU of the async stack, which goes through
        anyio and an event-loop turn per read. Unless a transport was given or a proxy is set, the body
        comes through :class:`~.stdlib_transport.StdlibTransport`, at a quarter of the CPU of httpx's own.
        """
        if self._sync_transport is False:
            return None
        if self._sync_client is None:
            transport: httpx.BaseTransport | None = None  # httpx's own, which honours proxy settings
            if isinstance(self._sync_transport, httpx.BaseTransport):
                transport = self._sync_transport
            elif stdlib_transport_applies():
                transport = StdlibTransport(default_ssl_context())
            self._sync_client = httpx.Client(
                transport=transport, follow_redirects=False, verify=default_ssl_context()
            )
        request = self._build("GET", url, None, None, accept)
        try:
            response = self._sync_client.send(request, stream=True, follow_redirects=False)
        except httpx.TransportError:
            return None
        if response.is_success:
            return response
        response.close()
        return None

    def _build(
        self,
        method: str,
        url: httpx.URL,
        params: Mapping[str, str | int] | None,
        content: bytes | BodyStream | None,
        accept: str,
    ) -> httpx.Request:
        headers = dict(self._headers)
        headers["accept"] = accept
        if origin_of(url) == self._origin:
            headers["x-api-key"] = self._key.reveal()
        body: bytes | AsyncIterator[bytes] | None
        if content is None or isinstance(content, bytes):
            body = content
        else:
            body = content.aiter_body()
            # With a content-length httpx sends the stream as is instead of chunked encoding.
            headers["content-length"] = str(content.nbytes)
        if content is not None:
            headers["content-type"] = "application/json"
        return self._client.build_request(
            method, url, params=params, content=body, headers=headers, timeout=self.timeout
        )

    async def _wait(
        self, retries: int, headers: httpx.Headers | None, reason: str, request: httpx.Request
    ) -> None:
        delay = self.retry.delay(retries, headers)
        request_id = headers.get("request-id") if headers is not None else None
        log.info(
            "%s %s failed (%s%s); retry %d of %d in %.2f s",
            request.method,
            request.url.copy_with(query=None),
            reason,
            f", request-id {request_id}" if request_id else "",
            retries + 1,
            self.retry.max_retries,
            delay,
        )
        await self.retry.sleep(delay)

    def _raise_connection_error(
        self,
        exc: httpx.TransportError,
        request: httpx.Request,
        retries: int,
        decision: Decision,
        creates: str | None,
    ) -> NoReturn:
        detail = str(exc).replace(self._key.reveal(), "<redacted>") or "no details"
        attempts = f" after {retries + 1} attempts" if retries else ""
        cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        error = cls(
            f"{request.method} {request.url} got no response{attempts}: {type(exc).__name__}: {detail}",
            method=request.method,
            url=str(request.url),
        )
        if decision is Decision.AMBIGUOUS:
            raise AmbiguousCreateError(_ambiguous_message(creates, str(error)), cause=error) from error
        # Not chained: an httpx error carries the request, headers and key included.
        raise error from None


def _ambiguous_message(creates: str | None, failure: str) -> str:
    return (
        f"create may have made a batch ({creates}), but its outcome is unknown: {failure}. The request was "
        "not retried so as not to pay twice. A batch may exist: list batches (newest first, e.g. "
        "`async for b in service.list(limit=20)`) and look for one created just now with this request count "
        "before re-submitting."
    )


async def _read_capped(response: httpx.Response) -> bytes:
    """Up to ``MAX_ERROR_BODY_BYTES`` of an error response's body (a proxy's HTML page can be large)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        parts.append(chunk)
        size += len(chunk)
        if size >= MAX_ERROR_BODY_BYTES:
            break
    return b"".join(parts)[:MAX_ERROR_BODY_BYTES]
