"""StdlibTransport against real loopback servers: what it sends, what it streams, and how it fails.

The landing reads every results body through it (``ApiSession.send_stream_sync``), so a failure must come out
as the httpx error a caller of httpx expects: that is what turns a cut stream into a fetch from the start.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_batches.api._http import ApiSession, Secret
from airflow_batches.api.retry import RetryPolicy
from airflow_batches.api.stdlib_transport import StdlibTransport, stdlib_transport_applies
from airflow_batches.api.tls import default_ssl_context

Reply = Callable[[socket.socket], None]
HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"


class ScriptedServer:
    """Accepts connections on loopback; for each, reads the request head, keeps it, and runs ``reply``."""

    def __init__(self, reply: Reply, wrap: ssl.SSLContext | None = None) -> None:
        self.heads: list[bytes] = []
        self._reply = reply
        self._wrap = wrap
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            try:
                if self._wrap is not None:
                    conn = self._wrap.wrap_socket(conn, server_side=True)
                head = b""
                while b"\r\n\r\n" not in head:
                    data = conn.recv(65536)
                    if not data:
                        break
                    head += data
                self.heads.append(head)
                self._reply(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(reply: Reply, wrap: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(reply, wrap))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def send_bytes(raw: bytes) -> Reply:
    return lambda conn: conn.sendall(raw)


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def client() -> httpx.Client:
    return httpx.Client(transport=StdlibTransport(default_ssl_context()))


def test_a_get_sends_what_httpx_built_and_streams_the_body_as_received(
    serve: Callable[..., ScriptedServer],
) -> None:
    body = [b'{"custom_id":"a"}\n' * 1000, b'{"custom_id":"b"}\n' * 3000]
    server = serve(send_bytes(HEAD_CHUNKED + b"request-id: req_1\r\n\r\n" + chunked(*body)))
    url = f"http://127.0.0.1:{server.port}/v1/x/results?page=2"
    with client() as http, http.stream("GET", url, headers={"x-k": "v"}) as response:
        received = b"".join(response.iter_bytes())
        assert response.status_code == 200 and response.reason_phrase == "OK"
        assert response.headers["request-id"] == "req_1"
    assert received == b"".join(body)
    request_line, *header_lines = server.heads[0].decode().split("\r\n")[:-2]
    assert request_line == "GET /v1/x/results?page=2 HTTP/1.1"
    names = [line.split(":")[0].lower() for line in header_lines]
    # httpx's headers only, each once: http.client adds no Host or Accept-Encoding of its own.
    with httpx.Client() as plain:
        built = plain.build_request("GET", "http://h/", headers={"x-k": "v"})
    assert sorted(names) == sorted(built.headers)
    assert f"host: 127.0.0.1:{server.port}" in [line.lower() for line in header_lines]


def test_a_gzip_body_is_decoded_by_httpx_above_the_transport(serve: Callable[..., ScriptedServer]) -> None:
    packed = gzip.compress(b"line\n" * 10_000)
    server = serve(
        send_bytes(
            b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n" % len(packed) + packed
        )
    )
    with client() as http:
        assert http.get(f"http://127.0.0.1:{server.port}/").content == b"line\n" * 10_000


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 60_000,
        HEAD_CHUNKED + b"\r\n" + b"%x\r\n" % 100_000 + b"x" * 60_000,
        HEAD_CHUNKED + b"\r\n" + chunked(b"x" * 60_000)[:-5],
    ],
    ids=["content-length", "inside-a-chunk", "before-the-last-chunk"],
)
def test_a_body_cut_short_raises_a_remote_protocol_error(
    serve: Callable[..., ScriptedServer], response: bytes
) -> None:
    server = serve(send_bytes(response))
    with (
        client() as http,
        http.stream("GET", f"http://127.0.0.1:{server.port}/") as streamed,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        for _ in streamed.iter_bytes():
            pass


def test_a_refused_connection_raises_connect_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]
    with client() as http, pytest.raises(httpx.ConnectError):
        http.get(f"http://127.0.0.1:{port}/")


def test_a_server_that_stops_answering_raises_read_timeout(serve: Callable[..., ScriptedServer]) -> None:
    stalled = threading.Event()

    def answer_then_stall(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nab")
        stalled.wait(5)

    server = serve(answer_then_stall)
    try:
        with (
            httpx.Client(transport=StdlibTransport(default_ssl_context()), timeout=0.3) as http,
            http.stream("GET", f"http://127.0.0.1:{server.port}/") as streamed,
            pytest.raises(httpx.ReadTimeout),
        ):
            for _ in streamed.iter_bytes():
                pass
    finally:
        stalled.set()


def test_https_verifies_the_server_certificate(serve: Callable[..., ScriptedServer], tmp_path: Path) -> None:
    authority, server_context = certificate_chain(tmp_path)
    server = serve(send_bytes(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), wrap=server_context)
    trusting = ssl.create_default_context(cafile=str(authority))
    with httpx.Client(transport=StdlibTransport(trusting)) as http:
        assert http.get(f"https://localhost:{server.port}/").content == b"ok"
    with client() as http, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        http.get(f"https://localhost:{server.port}/")


def certificate_chain(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A throwaway authority and a ``localhost`` certificate it signed; the CA file and the server context."""
    now = datetime.datetime.now(datetime.UTC)

    Key = ec.EllipticCurvePrivateKey

    def certificate(subject: str, key: Key, issuer: str, signer: Key, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = x509.SubjectAlternativeName([x509.DNSName(subject)])
            builder = builder.add_extension(names, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate("test authority", ca_key, "test authority", ca_key, ca=True)
    server_cert = certificate("localhost", server_key, "test authority", ca_key, ca=False)
    authority = directory / "ca.pem"
    authority.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = directory / "server.pem"
    chain.write_bytes(
        server_cert.public_bytes(serialization.Encoding.PEM)
        + server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    return authority, context


def test_it_stands_in_for_httpx_only_without_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert stdlib_transport_applies()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert not stdlib_transport_applies()


def test_with_a_proxy_set_the_results_read_goes_through_the_proxy(
    serve: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve(send_bytes(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nproxy\n"))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = ApiSession(
        api_key=Secret("sk-test"),
        base_url=httpx.URL("http://batches.invalid/"),
        client=httpx.AsyncClient(),
        owns_client=True,
        headers={},
        retry=RetryPolicy(max_retries=0),
        timeout=httpx.Timeout(5.0),
        sync_transport=True,
    )
    try:
        response = session.send_stream_sync(session.url_for("v1/messages/batches/b/results"), accept="*/*")
        assert response is not None
        assert response.read() == b"proxy\n"
        response.close()
    finally:
        asyncio.run(session.aclose())
    # The proxy got the absolute URL: httpx's own transport sent it, as the proxy setting asks.
    assert proxy.heads[0].startswith(b"GET http://batches.invalid/v1/messages/batches/b/results HTTP/1.1")
