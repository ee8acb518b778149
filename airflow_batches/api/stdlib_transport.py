"""A synchronous httpx transport over the standard library's ``http.client``, for reading big bodies.

httpx's default transport reads a body 64 KiB at a time through httpcore and h11, several Python frames and
two copies per read: landing a results body of a few hundred MB spent more CPU there than in checking the
lines. ``http.client`` reads through a C ``BufferedReader`` and, in a chunked body, parses only the chunk
headers in Python: reading and dropping a 234 MB body took 0.03-0.04 s of CPU this way against 0.12-0.17 s.

It is an ``httpx.BaseTransport``, so everything above it (headers, status, content decoding, the stream
API) is httpx's own. One connection per request, closed with the response: it serves long reads, not many
small calls. It sends what httpx built, byte for byte (no ``Host`` or ``Accept-Encoding`` of its own), and
raises httpx's transport errors, so callers handle a failure exactly as with httpx's transport. It knows no
proxies: :func:`stdlib_transport_applies` says when it may stand in for httpx's default transport.
"""

from __future__ import annotations

import contextlib
import http.client
import ssl
import urllib.request
from collections.abc import Iterator

import httpx

__all__ = ["StdlibTransport", "stdlib_transport_applies"]

_READ_BYTES = 256 << 10  # an upper bound per read; each returns what the socket has, as httpx's do


def stdlib_transport_applies() -> bool:
    """Whether :class:`StdlibTransport` may replace httpx's default one: no proxy is set in the environment.

    httpx routes through ``HTTP(S)_PROXY``/``ALL_PROXY``; any proxy setting keeps httpx's transport, which
    honours them, rather than reproduce its matching rules here.
    """
    return not urllib.request.getproxies()


class StdlibTransport(httpx.BaseTransport):
    """Sends each request on a new ``http.client`` connection and streams the response body."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl_context = ssl_context

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        connection = self._connect(request.url, timeouts.get("connect"))
        try:
            with _mapped_errors(httpx.ConnectTimeout, httpx.ConnectError):
                connection.connect()
            with _mapped_errors(httpx.WriteTimeout, httpx.WriteError):
                connection.sock.settimeout(timeouts.get("write"))
                connection.putrequest(
                    request.method,
                    request.url.raw_path.decode("ascii"),
                    skip_host=True,
                    skip_accept_encoding=True,
                )
                for name, value in request.headers.raw:
                    connection.putheader(name, value)
                connection.endheaders(request.read() or None)
            with _mapped_errors(httpx.ReadTimeout, httpx.ReadError):
                connection.sock.settimeout(timeouts.get("read"))
                response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        return httpx.Response(
            response.status,
            headers=response.getheaders(),
            stream=_Body(connection, response),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason.encode("latin-1")},
        )

    def _connect(self, url: httpx.URL, timeout: float | None) -> http.client.HTTPConnection:
        if url.scheme == "https":
            return http.client.HTTPSConnection(url.host, url.port, timeout=timeout, context=self._ssl_context)
        if url.scheme == "http":
            return http.client.HTTPConnection(url.host, url.port, timeout=timeout)
        raise httpx.UnsupportedProtocol(f"the request's URL has an unsupported scheme: {url.scheme!r}")


class _Body(httpx.SyncByteStream):
    """The response body as it arrives; closing it closes the connection."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self._connection = connection
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        read = self._response.read1
        with _mapped_errors(httpx.ReadTimeout, httpx.ReadError):
            while data := read(_READ_BYTES):
                yield data
        # http.client raises on a chunked body cut short, but ends a Content-Length one quietly.
        if self._response.length:
            raise httpx.RemoteProtocolError(
                f"the connection closed {self._response.length:,} bytes before the end of the response body"
            )

    def close(self) -> None:
        self._response.close()
        self._connection.close()


@contextlib.contextmanager
def _mapped_errors(
    timeout_error: type[httpx.TransportError], error: type[httpx.TransportError]
) -> Iterator[None]:
    """Raise a failure of ``http.client`` or the socket as the httpx error a caller of httpx expects."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout_error(str(exc) or "timed out") from exc
    except http.client.HTTPException as exc:
        raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise error(f"{type(exc).__name__}: {exc}") from exc
