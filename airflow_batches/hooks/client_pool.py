"""One ``httpx.AsyncClient`` per (event loop, connection settings), shared by every trigger on that loop.

The triggerer runs thousands of triggers on one loop; a client (connection pool, TLS sessions) per trigger
would open a socket per batch. Clients are keyed by the loop they were made on (an httpx client must not
cross loops) and by a hash of the connection's base URL, never by the settings themselves, so nothing
secret ends up in a key. Neither the API key nor timeouts are part of the client: the service adds them to
each request. Callers must not close a shared client; :func:`aclose_shared_clients` is for whoever owns
the loop.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

from airflow_batches.hooks.connection_settings import ConnectionSettings

__all__ = ["aclose_shared_clients", "shared_client"]

# Enough keep-alive connections for many triggers polling at once, without unbounded sockets.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

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
        client = httpx.AsyncClient(limits=_LIMITS, follow_redirects=False)
        clients[key] = client
    return client


async def aclose_shared_clients() -> None:
    """Close the running loop's shared clients, e.g. before a private event loop ends."""
    clients = _CLIENTS.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()
