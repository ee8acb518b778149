"""One ``httpx.AsyncClient`` per (event loop, connection settings), shared by every trigger on that loop.

The triggerer runs thousands of triggers on one loop; a client (connection pool, TLS sessions) per trigger
would open a socket per batch. Clients are keyed by the loop they were made on (an httpx client must not
cross loops) and by a hash of the connection's base URL, never by the settings themselves, so nothing
secret ends up in a key. Neither the API key nor timeouts are part of the client: the service adds them to
each request. Callers must not close a shared client; :func:`aclose_shared_clients` is for whoever owns
the loop.

Sizing: the triggerer's polls all go through this client, so it sends through an
:class:`~airflow_batches.api.admission.AdmissionTransport`: no more requests in flight than connections, the
connections split over ``POOLS`` small pools of ``POOL_SIZE`` (httpcore's work per request grows with the size
of a pool), every connection kept alive. By Little's law, 64 connections of 200 ms requests serve 320 polls a
second: 19,000 batches polled every 60 s, or 1,600 every 5 s. ``bench/bench_triggerer.py`` measures it.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

from airflow_batches.api.admission import AdmissionTransport
from airflow_batches.api.tls import default_ssl_context
from airflow_batches.hooks.connection_settings import ConnectionSettings

__all__ = ["POOLS", "POOL_SIZE", "aclose_shared_clients", "shared_client"]

POOLS = 8
POOL_SIZE = 8

_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def shared_client(settings: ConnectionSettings) -> httpx.AsyncClient:
    """The running loop's client for these settings, made on first use (no await, so no race)."""
    clients = _CLIENTS.setdefault(asyncio.get_running_loop(), {})
    key = settings.pool_key()
    client = clients.get(key)
    if client is None or client.is_closed:
        # Timeouts are not set here: the service passes its configured timeout with every request.
        transport = AdmissionTransport(_pool, pools=POOLS, pool_size=POOL_SIZE)
        client = httpx.AsyncClient(transport=transport, follow_redirects=False)
        clients[key] = client
    return client


def _pool(size: int) -> httpx.AsyncHTTPTransport:
    # Keep-alive slots equal to connections: fewer makes httpcore drop connections it just assigned. One
    # TLS context for all pools: building one loads the CA bundle, which would hold the loop 8 times over.
    return httpx.AsyncHTTPTransport(
        verify=default_ssl_context(),
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
    )


async def aclose_shared_clients() -> None:
    """Close the running loop's shared clients, e.g. before a private event loop ends."""
    clients = _CLIENTS.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()
