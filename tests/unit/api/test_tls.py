"""One TLS context per process and certificate settings, shared by the clients the package builds."""

from __future__ import annotations

import ssl

import certifi
import pytest

from airflow_batches.api.tls import default_ssl_context


def test_the_context_is_built_once_and_verifies() -> None:
    context = default_ssl_context()
    assert context is default_ssl_context()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_another_certificate_file_gets_its_own_context(monkeypatch: pytest.MonkeyPatch) -> None:
    default = default_ssl_context()
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    other = default_ssl_context()
    assert other is not default and other is default_ssl_context()
