"""Client settings read from an Airflow connection, checked once, with clear errors.

Two connection types are read the same way: ours (``anthropic_batches``) and the official Anthropic
provider's (``anthropic``), so an existing ``anthropic_default`` connection works unchanged. The API key is
the password, the base URL the host (a bare host gets ``https://``), the rest comes from the extras. For the
official provider's connections ``anthropic_client_kwargs`` is honoured too, in this order: its ``base_url``
and ``api_key`` win over the host and the password (as the official provider reads them), and our top-level
``timeout``, ``max_retries`` and ``default_headers`` extras win over its keys of those names. Its
``model`` extra is the default model, and its ``platform`` and ``workload_identity`` extras are read as
:mod:`airflow_batches.hooks.platforms` explains: what cannot work fails here, before any request.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_batches.api.service import DEFAULT_BASE_URL
from airflow_batches.checks import is_positive_number
from airflow_batches.hooks.platforms import default_model, platform_target, settings_error

__all__ = [
    "ConnectionSettings",
    "settings_from_connection",
    "unknown_extras",
]


# Extras of the official provider's connection read by ``platforms`` (or, for other clouds, refused there).
_FOREIGN_EXTRAS = frozenset(
    {"model", "platform", "workload_identity", "aws_region", "project_id", "region", "resource"}
)
_OUR_EXTRAS = frozenset({"anthropic_version", "timeout", "max_retries", "betas", "default_headers"})


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything a client needs, as primitives; the key and headers (may hold tokens) stay out of repr."""

    conn_id: str
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    betas: tuple[str, ...] = ()
    default_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    default_model: str | None = None

    def pool_key(self) -> str:
        """Names the HTTP pool these settings may share: a hash, so no setting can leak through it."""
        return hashlib.sha256(self.base_url.encode()).hexdigest()[:16]

    def service_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``BatchServiceAsync``; unset settings keep the service's defaults."""
        kwargs: dict[str, Any] = {"api_key": self.api_key, "base_url": self.base_url, "betas": self.betas}
        if self.default_headers:
            kwargs["default_headers"] = dict(self.default_headers)
        if self.api_version is not None:
            kwargs["api_version"] = self.api_version
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        if self.max_retries is not None:
            kwargs["max_retries"] = self.max_retries
        return kwargs


def _base_url(conn_id: str, host: str | None, port: int | None) -> str:
    text = (host or "").strip()
    if not text:
        return DEFAULT_BASE_URL
    if "://" not in text:
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        parsed_port = parts.port
    except ValueError as exc:
        raise settings_error(
            conn_id, "host", f"{host!r} is not a URL ({exc})", "use e.g. https://api.anthropic.com"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise settings_error(
            conn_id, "host", f"{host!r} is not an http(s) URL", "use e.g. https://api.anthropic.com"
        )
    if parts.username or parts.password:
        raise settings_error(
            conn_id, "host", "the base URL contains credentials", "put the API key in the password field"
        )
    if parts.query or parts.fragment:
        raise settings_error(
            conn_id, "host", "the base URL has a query or fragment", "give only scheme, host and path"
        )
    netloc = parts.netloc
    if port and parsed_port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _timeout(conn_id: str, key: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not is_positive_number(number):
        raise settings_error(
            conn_id, f"extra {key!r}", f"{value!r} is not a positive number of seconds", "e.g. 60"
        )
    return number


def _max_retries(conn_id: str, key: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip() if not isinstance(value, bool) else ""
    if not text.isdigit():
        raise settings_error(
            conn_id, f"extra {key!r}", f"{value!r} is not a whole number >= 0", "e.g. 2 (0 = no retries)"
        )
    return int(text)


def _betas(conn_id: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise settings_error(
            conn_id,
            "extra 'betas'",
            f"{value!r} is neither a list of names nor a comma-separated string",
            'e.g. "beta-one,beta-two" or ["beta-one"]',
        )
    return tuple(item.strip() for item in items if item.strip())


def _headers(conn_id: str, key: str, value: Any) -> tuple[tuple[str, str], ...]:
    if value is None or value == "":
        return ()
    fix = 'a JSON object of header names to string values, e.g. {"x-team": "etl"}'
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise settings_error(
                conn_id, f"extra {key!r}", f"not valid JSON ({exc.msg} at char {exc.pos})", fix
            ) from None
    if not isinstance(value, Mapping):
        raise settings_error(
            conn_id, f"extra {key!r}", f"expected an object, got {type(value).__name__}", fix
        )
    headers = []
    for name, header_value in value.items():
        if not isinstance(name, str) or not name.strip() or not isinstance(header_value, str | int | float):
            raise settings_error(
                conn_id, f"extra {key!r}", f"header {name!r} has a name or value that is not text", fix
            )
        headers.append((name.strip(), str(header_value)))
    return tuple(headers)


def settings_from_connection(
    conn_id: str, *, host: str | None, port: int | None, password: str | None, extra: Mapping[str, Any]
) -> ConnectionSettings:
    """Check and convert a connection's fields; raises :class:`ConnectionSettingsError` naming what to fix."""
    client_kwargs = extra.get("anthropic_client_kwargs") or {}
    if not isinstance(client_kwargs, Mapping):
        raise settings_error(
            conn_id, "extra 'anthropic_client_kwargs'", "is not an object", "give a JSON object or remove it"
        )
    target = platform_target(conn_id, extra, client_kwargs, host=host, password=password)

    def pick(key: str) -> tuple[str, Any]:
        if extra.get(key) is not None:
            return key, extra[key]
        return f"anthropic_client_kwargs.{key}", client_kwargs.get(key)

    version = extra.get("anthropic_version")
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise settings_error(
            conn_id, "extra 'anthropic_version'", f"{version!r} is not a version string", "e.g. 2023-06-01"
        )
    return ConnectionSettings(
        conn_id=conn_id,
        base_url=_base_url(conn_id, target.base_url, port),
        api_key=target.api_key,
        api_version=version.strip() if isinstance(version, str) else None,
        timeout=_timeout(conn_id, *pick("timeout")),
        max_retries=_max_retries(conn_id, *pick("max_retries")),
        betas=_betas(conn_id, extra.get("betas")),
        default_headers=_headers(conn_id, *pick("default_headers")) + target.headers,
        default_model=default_model(conn_id, extra.get("model")),
    )


def unknown_extras(extra: Mapping[str, Any]) -> list[str]:
    """Extra keys this provider does not read (likely typos), for a warning."""
    known = _OUR_EXTRAS | _FOREIGN_EXTRAS | {"anthropic_client_kwargs"}
    return sorted(key for key in extra if key not in known)
