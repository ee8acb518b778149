"""airflow-batches: an Apache Airflow provider for Anthropic's Message Batches API."""

import contextlib
import re
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("airflow-batches")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

# The Airflow lines CI tests (scripts/test.sh); pyproject.toml declares the same range.
SUPPORTED_AIRFLOW = ((3, 1), (3, 3))


def _check_airflow(installed: str) -> None:
    """Fail at import with what is supported, instead of somewhere deep in a task on an untested Airflow."""
    found = re.match(r"(\d+)\.(\d+)", installed)
    if found is None:
        return  # not a release number: someone's own build, their call
    line = (int(found[1]), int(found[2]))
    low, high = SUPPORTED_AIRFLOW
    if not low <= line <= high:
        supported = f"{low[0]}.{low[1]} to {high[0]}.{high[1]}"
        raise RuntimeError(
            f"airflow-batches {__version__} supports Apache Airflow {supported}, the lines its CI tests, but "
            f"Airflow {installed} is installed. Install Airflow {supported}, or an airflow-batches release "
            "that supports your Airflow."
        )


with contextlib.suppress(PackageNotFoundError):  # the API client and the emulator work without Airflow
    _check_airflow(version("apache-airflow"))

__all__ = ["SUPPORTED_AIRFLOW", "__version__"]
