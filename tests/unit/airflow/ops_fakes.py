"""Small in-memory stand-ins for unit tests of the operators, sensor and trigger: batches (as models and as
API JSON), a batch API behind the hook's sync facade, a task instance that records XCom pushes, and a task
state store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow_batches.api.errors import NotFoundError
from airflow_batches.api.models import MessageBatch, MessageBatchRequestCounts
from airflow_batches.api.spool import SpooledBatch
from airflow_batches.batch_ref import batch_snapshot
from airflow_batches.events import BatchEvent, make_event


def batch(batch_id: str, total: int, status: str = "in_progress", **counts: int) -> MessageBatch:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    if status == "ended" and not counts:
        counts = {"succeeded": total}
    processing = total - sum(counts.values())
    return MessageBatch(
        id=batch_id,
        processing_status=status,  # type: ignore[arg-type]
        request_counts=MessageBatchRequestCounts(processing=processing, **counts),
        created_at=now,
        expires_at=now + timedelta(days=1),
        ended_at=now if status == "ended" else None,
    )


def batch_json(batch_id: str, status: str = "in_progress", total: int = 3, **counts: int) -> dict[str, Any]:
    """The API's JSON for :func:`batch`, for tests that answer over ``httpx.MockTransport``."""
    return batch(batch_id, total, status, **counts).model_dump(mode="json")


class FakeBatchHook:
    """The sync facade of BatchHook over an in-memory set of batches."""

    def __init__(self, *, status: str = "in_progress", fail_create_at: int | None = None) -> None:
        self.batches: dict[str, MessageBatch] = {}
        self.bodies: list[dict[str, Any]] = []
        self.cancelled: list[str] = []
        self.deleted: list[str] = []
        self.status = status
        self.fail_create_at = fail_create_at
        self.default_model: str | None = None  # the connection's ``model`` extra

    def create(self, spooled: SpooledBatch) -> MessageBatch:
        if self.fail_create_at is not None and len(self.bodies) + 1 == self.fail_create_at:
            raise RuntimeError("worker died during create")
        body = json.loads(spooled.path.read_bytes())
        self.bodies.append(body)
        created = batch(f"msgbatch_{len(self.bodies):024d}", len(body["requests"]), self.status)
        self.batches[created.id] = created
        return created

    def retrieve(self, batch_id: str) -> MessageBatch:
        if batch_id not in self.batches:
            raise NotFoundError(
                status_code=404, error_type="not_found_error", api_message="not found", request_id="req_x"
            )
        return self.batches[batch_id]

    def cancel(self, batch_id: str) -> MessageBatch:
        self.cancelled.append(batch_id)
        current = self.retrieve(batch_id)
        self.batches[batch_id] = current.model_copy(
            update={"processing_status": "canceling", "cancel_initiated_at": datetime(2026, 1, 1, tzinfo=UTC)}
        )
        return self.batches[batch_id]

    def delete(self, batch_id: str) -> None:
        self.retrieve(batch_id)
        self.deleted.append(batch_id)
        del self.batches[batch_id]

    def end_all(self, **counts: int) -> None:
        self.end(list(self.batches), **counts)

    def end(self, batch_ids: list[str], **counts: int) -> None:
        for batch_id in batch_ids:
            total = self.batches[batch_id].request_counts.total
            self.batches[batch_id] = batch(batch_id, total, "ended", **counts)

    def event(
        self, status: str = "success", reason: str = "ended", ids: list[str] | None = None
    ) -> BatchEvent:
        ids = ids or list(self.batches)
        return make_event(status, reason, "test event", ids, [batch_snapshot(self.batches[i]) for i in ids])  # type: ignore[arg-type]


class FakeTI:
    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.pushed: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.append((key, value))

    def xcom_pull(self, task_ids: str, key: str) -> Any:
        return next((value for pushed_key, value in reversed(self.pushed) if pushed_key == key), None)


class DictStore:
    """Airflow's TaskStateStoreAccessor get/set/delete, kept in a dict."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def context(store: DictStore | None = None, try_number: int = 1) -> dict[str, Any]:
    return {"ti": FakeTI(try_number), "task_state_store": store if store is not None else DictStore()}
