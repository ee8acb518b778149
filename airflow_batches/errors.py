"""Every exception the Airflow side of this provider raises, in one tree; the client's own are re-exported.

A DAG author catches these from here (``from airflow_batches.errors import BatchOutcomeError``). The base
class decides what Airflow does with a task that raises one: ``[fail]`` fails the task at once, without
retries (``AirflowFailException``: trying again would reach the same answer, or pay twice); ``[retry]`` lets
Airflow retry the task as configured; ``[timeout]`` is a sensor timeout (no retry); ``[parse]`` is raised
while the DAG file is parsed or an argument is read, before anything is paid for::

    AirflowFailException                                  [fail]
    ├── BatchRequestsInvalidError    the requests break the API's rules; nothing was sent
    ├── BatchCreateAmbiguousError    create may have made a batch whose id never arrived
    ├── BatchBudgetExceededError     the plan may cost more than ``max_cost_usd``; nothing was sent
    ├── RequestSourceError           the create operator's ``requests`` cannot be read
    │   └── RecordsError             a ``RequestTemplate``'s records cannot be read
    ├── BatchOutcomeError            ended batches break the outcome policy (too many failed requests, ...)
    ├── BatchAccessError             a batch cannot be read: key, permission, unknown id, bad request
    ├── BatchMissingError            a batch to cancel or delete does not exist
    └── BatchStillRunningError       delete of a batch that has not ended, without ``cancel_if_running``
    AirflowException                                      [retry]
    └── BatchWaitError               waiting failed on errors that may pass; a retry reattaches
    AirflowSensorTimeout                                  [timeout]
    └── BatchWaitTimeout             the deadline passed before every batch ended (they keep running)
    ValueError                                            [parse]
    ├── BatchRefError                a value that names no batch (``batch_id`` arguments)
    ├── ConnectionSettingsError      a connection field or extra that cannot be used
    └── InvalidBatchEventError       a trigger event that does not follow the schema (a bug)
    OSError                                               [retry]
    ├── DestinationExistsError       (FileExistsError) a results file exists and ``overwrite="error"``
    └── DestinationWriteError        storage refused a write; nothing was landed
    airflow_batches.api.BatchAPIError                     [retry] the client's tree (api/errors.py)
    ├── BatchNotEndedError
    │   └── ResultsWaitTimeoutError  ``wait=True`` and the batch did not end within ``wait_timeout``
    └── ResultsStreamError
        └── ResultsCheckError        the results arrived but their content is wrong
            └── ResultsCountMismatchError  lines per result type differ from ``request_counts``

Every message says what is wrong, where, and how to fix it, and never contains the API key.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, AirflowSensorTimeout

from airflow_batches.api.errors import (
    AmbiguousCreateError,
    BatchAPIError,
    BatchNotEndedError,
    RequestValidationError,
    ResultsArchivedError,
    ResultsStreamError,
)

__all__ = [
    "AmbiguousCreateError",
    "BatchAPIError",
    "BatchAccessError",
    "BatchBudgetExceededError",
    "BatchCreateAmbiguousError",
    "BatchMissingError",
    "BatchNotEndedError",
    "BatchOutcomeError",
    "BatchRefError",
    "BatchRequestsInvalidError",
    "BatchStillRunningError",
    "BatchWaitError",
    "BatchWaitTimeout",
    "ConnectionSettingsError",
    "DestinationExistsError",
    "DestinationWriteError",
    "InvalidBatchEventError",
    "RecordsError",
    "RequestSourceError",
    "RequestValidationError",
    "ResultsArchivedError",
    "ResultsCheckError",
    "ResultsCountMismatchError",
    "ResultsStreamError",
    "ResultsWaitTimeoutError",
]


# --- [fail]: the task fails at once -------------------------------------------------------------------------


class BatchRequestsInvalidError(AirflowFailException):
    """The requests break the API's rules; nothing was sent. Retrying the same input cannot help."""


class BatchCreateAmbiguousError(AirflowFailException):
    """``create`` may have made a batch whose id never arrived; retrying on its own could pay twice."""


class BatchBudgetExceededError(AirflowFailException):
    """The plan's upper bound is above ``max_cost_usd``, or a model has no price; nothing was sent."""


class RequestSourceError(AirflowFailException):
    """The ``requests`` argument cannot be read; retrying would not help."""


class RecordsError(RequestSourceError):
    """The records of a ``RequestTemplate`` cannot be read (no file, bad JSON/CSV/Parquet, no pyarrow)."""


class BatchOutcomeError(AirflowFailException):
    """The ended batches break the outcome policy (too many failed requests, all expired, all canceled)."""


class BatchAccessError(AirflowFailException):
    """The batch cannot be read: wrong key, no permission, unknown id, bad request. Retries won't help."""


class BatchMissingError(AirflowFailException):
    """A batch to act on does not exist (never did, or was deleted)."""


class BatchStillRunningError(AirflowFailException):
    """Delete of a batch that has not ended, without ``cancel_if_running``."""


# --- [retry] and [timeout] ----------------------------------------------------------------------------------


class BatchWaitError(AirflowException):
    """Waiting failed on errors that may be transient (the API kept failing); a task retry reattaches."""


class BatchWaitTimeout(AirflowSensorTimeout):
    """The deadline passed before every batch ended. The batches keep running unless cancelled on purpose."""


# --- [parse]: bad arguments ---------------------------------------------------------------------------------


class BatchRefError(ValueError):
    """The value does not name any batch."""


class ConnectionSettingsError(ValueError):
    """A connection field that cannot be used; the message names the connection, the field and the fix."""


class InvalidBatchEventError(ValueError):
    """A trigger event that does not follow the schema (a bug, or an event from another trigger)."""


# --- the results landing ------------------------------------------------------------------------------------


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
