"""One verifying TLS context per process for the clients this package builds.

httpx builds a new ``SSLContext`` for every client, loading the whole CA bundle each time (30-50 ms here);
a landing builds two clients (the async one and its sync twin for the results body), so that was most of the
fixed cost of landing a small batch. A context is safe to share between clients and threads. It is built as
httpx builds its default one, so ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` still apply (one context per value).
"""

from __future__ import annotations

import functools
import os
import ssl

import httpx

__all__ = ["default_ssl_context"]


def default_ssl_context() -> ssl.SSLContext:
    """The context httpx would build by default, built once per process and certificate settings."""
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # The arguments only key the cache: httpx reads the same variables from the environment.
    return httpx.create_ssl_context()
