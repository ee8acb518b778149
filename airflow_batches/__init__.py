"""airflow-batches: an Apache Airflow provider for Anthropic's Message Batches API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("airflow-batches")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
