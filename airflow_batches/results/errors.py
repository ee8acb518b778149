"""Errors of the results landing, each saying what differs and what to do."""

from __future__ import annotations

from airflow_batches.api.errors import BatchNotEndedError, ResultsStreamError

__all__ = [
    "DestinationExistsError",
    "DestinationWriteError",
    "ResultsCheckError",
    "ResultsCountMismatchError",
    "ResultsWaitTimeoutError",
]


class ResultsCheckError(ResultsStreamError):
    """The results stream arrived but its content is wrong: a line that is not a result, or a duplicate id."""


class ResultsCountMismatchError(ResultsCheckError):
    """The number of lines per result type differs from the batch's ``request_counts``.

    ``expected`` and ``got`` map each result type to its count.
    """

    def __init__(self, message: str, *, batch_id: str, expected: dict[str, int], got: dict[str, int]) -> None:
        self.expected = expected
        self.got = got
        super().__init__(message, batch_id=batch_id)

    @property
    def short(self) -> bool:
        """Fewer lines than expected in total: the stream may have been cut at a line boundary."""
        return sum(self.got.values()) < sum(self.expected.values())


class DestinationExistsError(FileExistsError):
    """A destination file exists and the overwrite policy is ``"error"``."""


class DestinationWriteError(OSError):
    """Storage refused a write (missing bucket, no permission, disk full, ...); nothing was landed."""

    def __init__(self, batch_id: str, uris: list[str], cause: OSError) -> None:
        self.batch_id = batch_id
        self.uris = uris
        super().__init__(
            f"could not write the results of batch {batch_id} to {', '.join(uris)}: "
            f"{type(cause).__name__}: {cause}. Nothing was landed under the final name and the partial "
            "upload was removed; check that the destination exists and that its connection "
            "(destination_conn_id, or the conn id in the URI) may write there."
        )


class ResultsWaitTimeoutError(BatchNotEndedError):
    """``wait=True`` and the batch did not end within ``wait_timeout`` seconds."""

    def __init__(self, batch_id: str, processing_status: str, timeout: float) -> None:
        super().__init__(batch_id, processing_status)
        self.args = (
            f"batch {batch_id} is still {processing_status!r} after waiting {timeout:g} s for it to end; "
            "raise wait_timeout, or wait with BatchSensor before landing the results.",
        )
