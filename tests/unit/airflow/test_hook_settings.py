"""Reading client settings from connection fields: both connection types, defaults and clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_batches.errors import ConnectionSettingsError
from airflow_batches.hooks.connection_settings import settings_from_connection, unknown_extras

KEY = "sk-ant-settings-secret-0123456789"


def read(host: str | None = None, port: int | None = None, password: str | None = KEY, **extra: Any) -> Any:
    return settings_from_connection("my_conn", host=host, port=port, password=password, extra=extra)


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, "https://api.anthropic.com"),
        ("", None, "https://api.anthropic.com"),
        ("api.example.com", None, "https://api.example.com"),
        ("https://gateway.example.com/anthropic/", None, "https://gateway.example.com/anthropic"),
        ("http://127.0.0.1:8000", None, "http://127.0.0.1:8000"),
        ("127.0.0.1", 8123, "https://127.0.0.1:8123"),
        ("http://127.0.0.1:9000", 8123, "http://127.0.0.1:9000"),
    ],
)
def test_base_url_from_host_with_or_without_scheme(host: str | None, port: int | None, expected: str) -> None:
    assert read(host, port).base_url == expected


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("ftp://files.example.com", "not an http(s) URL"),
        ("https://user:pw@api.example.com", "contains credentials"),
        ("https://api.example.com/?x=1", "query or fragment"),
        ("https://api.example.com:notaport", "is not a URL"),
    ],
)
def test_unusable_host_is_named_with_a_fix(host: str, problem: str) -> None:
    with pytest.raises(ConnectionSettingsError) as info:
        read(host)
    text = str(info.value)
    assert "connection 'my_conn', host" in text and problem in text and "Fix:" in text


def test_defaults_leave_the_service_defaults_alone() -> None:
    settings = read()
    assert settings.service_kwargs() == {"api_key": KEY, "base_url": "https://api.anthropic.com", "betas": ()}


def test_our_extras_are_parsed_from_native_values_and_strings() -> None:
    settings = read(
        anthropic_version="2026-10-21",
        timeout="12.5",
        max_retries="4",
        betas="one, two,,",
        default_headers='{"x-team": "etl", "x-n": 3}',
    )
    assert settings.service_kwargs() == {
        "api_key": KEY,
        "base_url": "https://api.anthropic.com",
        "api_version": "2026-10-21",
        "timeout": 12.5,
        "max_retries": 4,
        "betas": ("one", "two"),
        "default_headers": {"x-team": "etl", "x-n": "3"},
    }
    assert read(betas=["a", " b "], timeout=3, max_retries=0).service_kwargs()["betas"] == ("a", "b")


def test_official_provider_client_kwargs_are_honoured_and_ours_win() -> None:
    """The order the README documents: the kwargs' base_url and api_key win over host and password (as in
    the official provider), our top-level extras win over the kwargs' timeout, max_retries and headers."""
    official = {
        "timeout": 30,
        "max_retries": 5,
        "default_headers": {"x-a": "1"},
        "base_url": "https://gw.example",
        "api_key": "sk-from-kwargs",
    }
    settings = read("ignored.example", anthropic_client_kwargs=official, model="claude-x")
    assert (settings.base_url, settings.timeout, settings.max_retries) == ("https://gw.example", 30.0, 5)
    assert settings.default_headers == (("x-a", "1"),)
    assert settings.api_key == "sk-from-kwargs"
    ours = read(
        "ignored.example",
        anthropic_client_kwargs=official,
        timeout=7,
        max_retries=0,
        default_headers={"x-b": "2"},
    )
    assert (ours.timeout, ours.max_retries, ours.default_headers) == (7.0, 0, (("x-b", "2"),))
    assert (ours.base_url, ours.api_key) == ("https://gw.example", "sk-from-kwargs")
    # Without base_url / api_key in the kwargs, the host and the password are used.
    plain = read("own.example", anthropic_client_kwargs={"timeout": 30})
    assert (plain.base_url, plain.api_key, plain.timeout) == ("https://own.example", KEY, 30.0)


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"timeout": "soon"}, "extra 'timeout'"),
        ({"timeout": -1}, "extra 'timeout'"),
        ({"timeout": True}, "extra 'timeout'"),
        ({"anthropic_client_kwargs": {"timeout": 0}}, "extra 'anthropic_client_kwargs.timeout'"),
        ({"max_retries": "-1"}, "extra 'max_retries'"),
        ({"max_retries": 1.5}, "extra 'max_retries'"),
        ({"betas": 3}, "extra 'betas'"),
        ({"default_headers": "{not json"}, "extra 'default_headers'"),
        ({"default_headers": ["x"]}, "extra 'default_headers'"),
        ({"default_headers": {"x-a": {"nested": 1}}}, "extra 'default_headers'"),
        ({"anthropic_version": ""}, "extra 'anthropic_version'"),
        ({"anthropic_client_kwargs": "timeout=3"}, "extra 'anthropic_client_kwargs'"),
        ({"platform": "bedrock"}, "extra 'platform'"),
    ],
)
def test_bad_extras_name_connection_field_and_fix(extra: dict[str, Any], where: str) -> None:
    with pytest.raises(ConnectionSettingsError) as info:
        read(**extra)
    text = str(info.value)
    assert text.startswith(f"connection 'my_conn', {where}:") and "Fix:" in text


def test_platform_anthropic_is_accepted() -> None:
    assert read(platform="Anthropic").api_key == KEY


def test_repr_hides_key_and_headers_and_pool_key_is_a_hash_of_the_base_url_only() -> None:
    settings = read(default_headers={"authorization": "Bearer gateway-token"})
    assert KEY not in repr(settings) and "gateway-token" not in repr(settings)
    assert "https://api.anthropic.com" in repr(settings)
    assert KEY not in settings.pool_key() and "api.anthropic.com" not in settings.pool_key()
    assert read(password="sk-other").pool_key() == settings.pool_key()
    assert read("api.example.com").pool_key() != settings.pool_key()


def test_unknown_extras_are_listed_but_known_foreign_ones_are_not() -> None:
    extra = {"timeout": 1, "model": "m", "platform": "anthropic", "anthropic_client_kwargs": {}, "timout": 3}
    assert unknown_extras(extra) == ["timout"]


def test_the_model_extra_is_the_default_model() -> None:
    assert read(model=" claude-haiku-4-5 ").default_model == "claude-haiku-4-5"
    assert read().default_model is None
    with pytest.raises(ConnectionSettingsError, match="extra 'model'"):
        read(model=["claude"])


AWS = {"platform": "aws", "aws_region": "us-west-2", "anthropic_client_kwargs": {"workspace_id": "wrkspc_1"}}


@pytest.fixture
def no_credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AWS_API_KEY",
        "ANTHROPIC_AWS_WORKSPACE_ID",
        "ANTHROPIC_AWS_BASE_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)


def test_claude_platform_on_aws_with_an_api_key_goes_to_its_regional_endpoint(
    no_credentials_in_env: None,
) -> None:
    settings = read(**AWS)
    assert settings.base_url == "https://aws-external-anthropic.us-west-2.api.aws"
    assert settings.api_key == KEY
    assert dict(settings.service_kwargs()["default_headers"]) == {"anthropic-workspace-id": "wrkspc_1"}
    via_kwargs = read(
        "ignored.example",
        password=None,
        platform="aws",
        anthropic_client_kwargs={"api_key": "sk-aws", "workspace_id": "w", "base_url": "http://127.0.0.1:9"},
    )
    assert (via_kwargs.base_url, via_kwargs.api_key) == ("http://127.0.0.1:9", "sk-aws")


def test_claude_platform_on_aws_reads_the_sdks_environment_variables(
    no_credentials_in_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_AWS_API_KEY", "sk-aws-env")
    monkeypatch.setenv("ANTHROPIC_AWS_WORKSPACE_ID", "wrkspc_env")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings = read(password=None, platform="aws")
    assert settings.base_url == "https://aws-external-anthropic.eu-west-1.api.aws"
    assert settings.api_key == "sk-aws-env"
    assert settings.default_headers == (("anthropic-workspace-id", "wrkspc_env"),)


@pytest.mark.parametrize(
    ("fields", "where", "problem"),
    [
        ({**AWS, "password": None}, "extra 'platform' = 'aws'", "without an API key"),
        (
            {
                **AWS,
                "anthropic_client_kwargs": {
                    "workspace_id": "w",
                    "aws_access_key": "AKIA",
                    "aws_secret_key": "s",
                },
            },
            "extra 'platform' = 'aws'",
            "aws_access_key, aws_secret_key select AWS SigV4",
        ),
        (
            {**AWS, "anthropic_client_kwargs": {}},
            "extra 'anthropic_client_kwargs.workspace_id'",
            "workspace id",
        ),
        ({**AWS, "aws_region": None}, "extra 'aws_region'", "needs a region"),
        ({"platform": "bedrock"}, "extra 'platform'", "Amazon Bedrock ('bedrock') does not serve"),
        ({"platform": "vertex"}, "extra 'platform'", "does not serve the Message Batches API"),
        ({"platform": "mainframe"}, "extra 'platform'", "unknown platform 'mainframe'"),
        (
            {
                "password": None,
                "workload_identity": {
                    "identity_token_file": "/var/run/secrets/anthropic.com/token",
                    "federation_rule_id": "fdrl_1",
                    "organization_id": "org",
                },
            },
            "extra 'workload_identity'",
            "Workload Identity Federation (keyless OIDC sign-in) is not supported",
        ),
        ({"password": None}, "password", "no API key"),
    ],
)
def test_platforms_and_credentials_that_cannot_work_fail_when_the_connection_is_read(
    no_credentials_in_env: None, fields: dict[str, Any], where: str, problem: str
) -> None:
    password = fields.pop("password", KEY)
    with pytest.raises(ConnectionSettingsError) as info:
        read(password=password, **fields)
    text = str(info.value)
    assert text.startswith(f"connection 'my_conn', {where}:"), text
    assert problem in text and "Fix:" in text
    if where != "extra 'anthropic_client_kwargs.workspace_id'" and where != "extra 'aws_region'":
        assert "supported: platform 'anthropic'" in text


def test_a_connection_without_a_key_uses_anthropic_api_key_from_the_environment(
    no_credentials_in_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-env")
    assert read(password=None).api_key is None  # the service reads $ANTHROPIC_API_KEY itself
