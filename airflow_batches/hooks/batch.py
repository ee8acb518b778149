"""``BatchHook``: an Airflow connection turned into a :class:`~airflow_batches.api.BatchServiceAsync`.

Async code (triggers) calls :meth:`BatchHook.aget_service`: the connection is looked up without blocking
the event loop and the HTTP pool is shared by every trigger of that connection on the loop. Sync code
(operators, sensors) uses the facade (:meth:`~BatchHook.create`, :meth:`~BatchHook.retrieve`, ...), each
call running on a private event loop with a pool of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook, mask_secret

from airflow_batches.api import (
    AuthenticationError,
    BatchAPIError,
    BatchServiceAsync,
    DeletedMessageBatch,
    InvalidInputError,
    MessageBatch,
    PermissionDeniedError,
    SpooledBatch,
)
from airflow_batches.errors import ConnectionSettingsError
from airflow_batches.hooks.client_pool import shared_client
from airflow_batches.hooks.connection_settings import (
    ConnectionSettings,
    settings_from_connection,
    unknown_extras,
)
from airflow_batches.hooks.loop_cache import shared_lookup
from airflow_batches.hooks.sync_runner import run_sync

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection, ObjectStoragePath

    from airflow_batches.batch_ref import BatchRef
    from airflow_batches.results import Manifest
    from airflow_batches.results.options import LandingOptions

__all__ = ["BatchHook"]

T = TypeVar("T")

_LIST_PAGE_MAX = 1000


class BatchHook(BaseHook):
    """Talk to the Message Batches API through an Airflow connection.

    The connection (default ``anthropic_default``) may be of our type ``anthropic_batches`` or of the official
    provider's type ``anthropic``: the API key is the password, the base URL the host (default
    ``https://api.anthropic.com``), and the extras ``anthropic_version``, ``timeout`` (seconds),
    ``max_retries``, ``betas`` (list or comma-separated) and ``default_headers`` (object) tune the client.

    :param conn_id: the connection to use, as in every operator of this package.
    :param anthropic_conn_id: the same, under the official Anthropic provider's name (an alias).
    """

    conn_name_attr = "conn_id"
    default_conn_name = "anthropic_default"
    conn_type = "anthropic_batches"
    hook_name = "Anthropic Message Batches"

    def __init__(
        self, conn_id: str = default_conn_name, *, anthropic_conn_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if anthropic_conn_id is not None and conn_id not in (self.default_conn_name, anthropic_conn_id):
            raise ValueError(
                f"BatchHook got conn_id={conn_id!r} and anthropic_conn_id={anthropic_conn_id!r}; "
                "anthropic_conn_id is an alias of conn_id: pass one of them"
            )
        self.conn_id = anthropic_conn_id or conn_id
        self._settings: ConnectionSettings | None = None

    @property
    def anthropic_conn_id(self) -> str:
        """Alias of :attr:`conn_id` (the official Anthropic provider's name)."""
        return self.conn_id

    # --- connection -------------------------------------------------------------------------------------

    def _read(self, conn: Connection, extra: Mapping[str, Any]) -> ConnectionSettings:
        settings = settings_from_connection(
            self.conn_id, host=conn.host, port=conn.port, password=conn.password, extra=extra
        )
        unknown = unknown_extras(extra)
        if unknown:
            self.log.warning(
                "Connection %r has extras this provider does not read (typo?): %s",
                self.conn_id,
                ", ".join(unknown),
            )
        return settings

    def get_settings(self) -> ConnectionSettings:
        """Read the connection (synchronously, once per hook). Never call it on an event loop."""
        if self._settings is None:
            conn = self.get_connection(self.conn_id)
            settings = self._read(conn, conn.extra_dejson)
            if settings.api_key:
                mask_secret(settings.api_key)
            self._settings = settings
        return self._settings

    async def aget_settings(self) -> ConnectionSettings:
        """Read the connection without blocking the event loop (once per hook; see :meth:`aget_service`)."""
        if self._settings is None:
            settings, _service = await shared_lookup(self.conn_id, self._alookup)
            self._settings = settings
            return settings
        return self._settings

    async def aget_service(self) -> BatchServiceAsync:
        """A service on this loop's shared HTTP pool. Do not close it (or its pool): other triggers use it.

        Hooks of one connection on one loop share the lookup and the service for a minute
        (:mod:`~airflow_batches.hooks.loop_cache`): thousands of triggers starting together look it up once.
        """
        self._settings, service = await shared_lookup(self.conn_id, self._alookup)
        return service

    async def _alookup(self) -> tuple[ConnectionSettings, BatchServiceAsync]:
        conn = await get_async_connection(self.conn_id, hook=self)
        extra = await get_async_extra_dejson(conn)
        settings = self._read(conn, extra)
        if settings.api_key:
            await _amask_secret(settings.api_key)
        return settings, BatchServiceAsync(**settings.service_kwargs(), http_client=shared_client(settings))

    @property
    def default_model(self) -> str | None:
        """The connection's ``model`` extra, as the official provider has it: for requests without a model."""
        return self.get_settings().default_model

    def get_service(self) -> BatchServiceAsync:
        """A service with a pool of its own; use it as ``async with hook.get_service() as service:``."""
        return BatchServiceAsync(**self.get_settings().service_kwargs())

    # --- sync facade ------------------------------------------------------------------------------------

    def run(self, call: Callable[[BatchServiceAsync], Awaitable[T]]) -> T:
        """Run ``await call(service)`` on a private event loop and return its result."""
        self.get_settings()  # the lookup is synchronous: done here, before the private loop starts

        async def with_service() -> T:
            async with self.get_service() as service:
                return await call(service)

        return run_sync(with_service)

    def create(self, requests: Iterable[Mapping[str, Any]] | SpooledBatch) -> MessageBatch:
        """Create one batch; requests are validated before anything is sent."""
        return self.run(lambda service: service.create(requests))

    def retrieve(self, batch_id: str) -> MessageBatch:
        return self.run(lambda service: service.retrieve(batch_id))

    def cancel(self, batch_id: str) -> MessageBatch:
        return self.run(lambda service: service.cancel(batch_id))

    def delete(self, batch_id: str) -> DeletedMessageBatch:
        return self.run(lambda service: service.delete(batch_id))

    def list_batches(
        self, limit: int | None = 20, *, before_id: str | None = None, after_id: str | None = None
    ) -> list[MessageBatch]:
        """Up to ``limit`` batches, newest first (``None``: all of them), fetching as many pages as needed."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None (all batches), got {limit!r}")

        async def call(service: BatchServiceAsync) -> list[MessageBatch]:
            page_size = _LIST_PAGE_MAX if limit is None else min(limit, _LIST_PAGE_MAX)
            found: list[MessageBatch] = []
            async for batch in service.list(limit=page_size, before_id=before_id, after_id=after_id):
                found.append(batch)
                if limit is not None and len(found) >= limit:
                    break
            return found

        return self.run(call)

    def test_connection(self) -> tuple[bool, str]:
        """Make one real, free request (list one batch) and say whether the connection works."""
        try:
            settings = self.get_settings()
            page = self.run(lambda service: service.list_page(limit=1))
        except (ConnectionSettingsError, AirflowNotFoundException, InvalidInputError) as exc:
            return False, self._redact(str(exc))
        except AuthenticationError as exc:
            return False, self._redact(
                f"The API key was rejected by {self._base_url()} (HTTP 401): put a valid key in the password "
                f"field of connection {self.conn_id!r}. [request-id: {exc.request_id or 'none'}]"
            )
        except PermissionDeniedError as exc:
            return False, self._redact(
                f"The API key may not use Message Batches at {self._base_url()} (HTTP 403): "
                f"{exc.api_message} [request-id: {exc.request_id or 'none'}]"
            )
        except BatchAPIError as exc:
            return False, self._redact(
                f"Could not reach the Message Batches API at {self._base_url()}: {exc}"
            )
        shown = "no batches yet" if not page.data else "the API listed batches"
        return True, f"Connected to the Message Batches API at {settings.base_url} ({shown})."

    def _base_url(self) -> str:
        return self._settings.base_url if self._settings else "the configured base URL"

    def _redact(self, text: str) -> str:
        """Belt and braces: the api layer never puts the key in messages, and this makes sure of it."""
        key = self._settings.api_key if self._settings else None
        return text.replace(key, "***") if key else text

    # --- results ----------------------------------------------------------------------------------------

    def land_results(
        self, batch_id: BatchRef, destination: str | ObjectStoragePath, **options: Unpack[LandingOptions]
    ) -> Manifest:
        """Stream the results of ``batch_id`` (id, ids or a create operator's XCom) to ``destination``.

        Returns the results manifest; see :func:`airflow_batches.results.land_results` for the options.
        """
        # Imported here: the landing pulls in object storage, which plain waiting never needs.
        from airflow_batches.results import land_results

        return land_results(self, batch_id, destination, **options)


async def _amask_secret(secret: str) -> None:
    """Mask without the sync supervisor call that deadlocks on a busy event loop (Airflow 3.3.2+)."""
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # Airflow before 3.3.2: the sync call is all there is
        mask_secret(secret)
    else:
        await amask_secret(secret)
