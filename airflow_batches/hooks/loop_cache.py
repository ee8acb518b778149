"""One connection lookup per (event loop, connection id) and minute, shared by every hook on that loop.

A triggerer starts thousands of triggers of the same connection (its own start, adopting a dead triggerer's
triggers, a mapped task deferring): each looking the connection up (a worker thread or a call to the API
server each) and building its own service would cost a lookup and a dozen objects per trigger for the
same answer. So the first hook of a connection on a loop looks it up, the others of the next
:data:`LOOKUP_TTL_SECONDS` share its result (and wait for it while it is under way); a failed lookup is not
remembered. A changed connection reaches triggers started after that time; a running trigger keeps what it
read, as before.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["LOOKUP_TTL_SECONDS", "shared_lookup"]

T = TypeVar("T")

LOOKUP_TTL_SECONDS = 60.0

_clock = time.monotonic  # module-level so tests can move it

_LOOKUPS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[float, asyncio.Future[Any]]]
] = weakref.WeakKeyDictionary()


async def shared_lookup(conn_id: str, lookup: Callable[[], Awaitable[T]]) -> T:
    """``await lookup()``, or the result of the lookup this loop started for ``conn_id`` within a minute."""
    lookups = _LOOKUPS.setdefault(asyncio.get_running_loop(), {})
    now = _clock()
    entry = lookups.get(conn_id)
    if entry is None or entry[0] <= now:
        entry = lookups[conn_id] = (now + LOOKUP_TTL_SECONDS, asyncio.ensure_future(lookup()))
    try:
        # Shielded: a trigger cancelled while waiting must not cancel the lookup the others wait for.
        result: T = await asyncio.shield(entry[1])
    except Exception:
        if lookups.get(conn_id) is entry:
            del lookups[conn_id]
        raise
    return result
