"""Which API a connection points at and with which credential, read as the official provider reads it.

The official provider's ``anthropic`` connection (``apache-airflow-providers-anthropic``) builds a different
client per ``platform`` extra. Message Batches are served by two of them, and this provider sends one kind of
credential, an API key (``x-api-key``), to one base URL:

- ``anthropic`` (or unset), the first-party API: key from ``anthropic_client_kwargs.api_key`` or the
  password (else ``$ANTHROPIC_API_KEY``), base URL from ``anthropic_client_kwargs.base_url`` or the host.
  A ``workload_identity`` extra (Workload Identity Federation: an OIDC token exchanged for short-lived
  access tokens) is refused, and so is a connection with no key at all (the SDK would look for federation
  settings or an ``ant`` profile in the environment): both need a credential other than a key.
- ``aws``, Claude Platform on AWS, in its API-key mode: key from ``anthropic_client_kwargs.api_key``, the
  password or ``$ANTHROPIC_AWS_API_KEY``; workspace from ``anthropic_client_kwargs.workspace_id`` or
  ``$ANTHROPIC_AWS_WORKSPACE_ID`` (sent as ``anthropic-workspace-id``, as the SDK does); base URL from
  ``anthropic_client_kwargs.base_url``, ``$ANTHROPIC_AWS_BASE_URL`` or
  ``https://aws-external-anthropic.<region>.api.aws`` with the region from the ``aws_region`` extra,
  ``$AWS_REGION`` or ``$AWS_DEFAULT_REGION``. Its SigV4 mode (AWS credentials instead of a key) is refused.
- ``bedrock``, ``vertex``, ``foundry``: refused; those platforms do not serve Message Batches.

Everything refused fails when the connection is read, before any request, with what is supported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_batches.errors import ConnectionSettingsError

__all__ = ["PlatformTarget", "default_model", "platform_target", "settings_error"]

AWS_BASE_URL_TEMPLATE = "https://aws-external-anthropic.{region}.api.aws"
_NO_BATCHES = {"bedrock": "Amazon Bedrock", "vertex": "Google Vertex AI", "foundry": "Microsoft Foundry"}
_SIGV4_KWARGS = ("aws_access_key", "aws_secret_key", "aws_session_token", "aws_profile")
_SUPPORTED = (
    "supported: platform 'anthropic' (or unset) with an API key, directly or through a gateway base URL, "
    "and platform 'aws' (Claude Platform on AWS) with an API key and a workspace id"
)


def settings_error(conn_id: str, where: str, problem: str, fix: str) -> ConnectionSettingsError:
    """The one shape of a connection error: which connection, which field, what is wrong, how to fix it."""
    return ConnectionSettingsError(f"connection {conn_id!r}, {where}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class PlatformTarget:
    """Where requests go (``None``: the first-party default) and with which key and extra headers."""

    base_url: str | None
    api_key: str | None
    headers: tuple[tuple[str, str], ...] = ()


def platform_target(
    conn_id: str,
    extra: Mapping[str, Any],
    client_kwargs: Mapping[str, Any],
    *,
    host: str | None,
    password: str | None,
) -> PlatformTarget:
    """The base URL, key and headers the connection's platform needs, or an error saying what is supported."""
    platform = str(extra.get("platform") or "anthropic").strip().lower()
    if platform in _NO_BATCHES:
        raise settings_error(
            conn_id,
            "extra 'platform'",
            f"{_NO_BATCHES[platform]} ({platform!r}) does not serve the Message Batches API; {_SUPPORTED}",
            "use a connection to the Anthropic API or to Claude Platform on AWS",
        )
    if platform not in ("anthropic", "aws"):
        raise settings_error(
            conn_id,
            "extra 'platform'",
            f"unknown platform {platform!r} (the official provider knows anthropic, bedrock, vertex, aws, "
            f"foundry); {_SUPPORTED}",
            "set platform to 'anthropic' or 'aws', or remove it",
        )
    if extra.get("workload_identity"):
        raise settings_error(
            conn_id,
            "extra 'workload_identity'",
            "Workload Identity Federation (keyless OIDC sign-in) is not supported: this provider "
            f"authenticates with an API key only; {_SUPPORTED}",
            "remove workload_identity and put an API key in the password field",
        )
    key = _text(client_kwargs.get("api_key")) or _text(password)
    if platform == "aws":
        return _aws_target(conn_id, extra, client_kwargs, key)
    if key is None and not os.environ.get("ANTHROPIC_API_KEY"):
        raise settings_error(
            conn_id,
            "password",
            "no API key (the official provider would then look for Workload Identity Federation settings "
            f"or an `ant` profile in the environment, which this provider does not support); {_SUPPORTED}",
            "put the API key in the password field (or set ANTHROPIC_API_KEY for workers and triggerers)",
        )
    base_url = client_kwargs.get("base_url") or host
    return PlatformTarget(base_url=base_url if isinstance(base_url, str) else None, api_key=key)


def _aws_target(
    conn_id: str, extra: Mapping[str, Any], client_kwargs: Mapping[str, Any], key: str | None
) -> PlatformTarget:
    sigv4 = [name for name in _SIGV4_KWARGS if client_kwargs.get(name)]
    key = key or _text(os.environ.get("ANTHROPIC_AWS_API_KEY"))
    if sigv4 or key is None:
        problem = (
            f"anthropic_client_kwargs {', '.join(sigv4)} select AWS SigV4 signing"
            if sigv4
            else "without an API key Claude Platform on AWS is used with AWS SigV4 signing"
        )
        raise settings_error(
            conn_id,
            "extra 'platform' = 'aws'",
            f"{problem}, which this provider does not support; {_SUPPORTED}",
            "give the Claude Platform on AWS API key in the password field (or "
            "anthropic_client_kwargs.api_key, or ANTHROPIC_AWS_API_KEY) and remove the AWS credentials",
        )
    workspace = _text(client_kwargs.get("workspace_id")) or _text(
        os.environ.get("ANTHROPIC_AWS_WORKSPACE_ID")
    )
    if workspace is None:
        raise settings_error(
            conn_id,
            "extra 'anthropic_client_kwargs.workspace_id'",
            "Claude Platform on AWS needs the workspace id",
            'set "anthropic_client_kwargs": {"workspace_id": "wrkspc_..."} (or ANTHROPIC_AWS_WORKSPACE_ID)',
        )
    base_url = _text(client_kwargs.get("base_url")) or _text(os.environ.get("ANTHROPIC_AWS_BASE_URL"))
    region = (
        _text(extra.get("aws_region"))
        or _text(os.environ.get("AWS_REGION"))
        or _text(os.environ.get("AWS_DEFAULT_REGION"))
    )
    if base_url is None and region is None:
        raise settings_error(
            conn_id,
            "extra 'aws_region'",
            "Claude Platform on AWS needs a region (or a base URL) to know where to send requests",
            'set "aws_region": "us-east-1" (or AWS_REGION, or anthropic_client_kwargs.base_url)',
        )
    return PlatformTarget(
        base_url=base_url or AWS_BASE_URL_TEMPLATE.format(region=region),
        api_key=key,
        headers=(("anthropic-workspace-id", workspace),),
    )


def default_model(conn_id: str, value: Any) -> str | None:
    """The ``model`` extra: the model of requests that set none (the operator's ``default_model`` wins)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise settings_error(
            conn_id, "extra 'model'", f"{value!r} is not a model name", 'e.g. "claude-haiku-4-5"'
        )
    return value.strip()


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
