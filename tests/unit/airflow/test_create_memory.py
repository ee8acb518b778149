"""A JSONL requests file is streamed: submitting it does not hold the file in memory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from ops_fakes import FakeBatchHook, batch, context

from airflow_batches.api.models import MessageBatch
from airflow_batches.api.spool import SpooledBatch
from airflow_batches.operators.create import BatchCreateOperator

REQUESTS = 20_000
TEXT = "x" * 1_900  # about 2 KB per request line


class SizeOnlyHook(FakeBatchHook):
    """Accepts spooled bodies without reading them (a real client streams them from disk)."""

    def create(self, spooled: SpooledBatch) -> MessageBatch:
        created = batch(f"msgbatch_{len(self.batches) + 1:024d}", spooled.request_count)
        self.batches[created.id] = created
        return created


def test_a_large_requests_file_is_submitted_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "requests.jsonl"
    with path.open("w") as out:
        for n in range(REQUESTS):
            params = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": TEXT}]}
            out.write(json.dumps({"custom_id": f"r-{n}", "params": params}) + "\n")
    file_bytes = path.stat().st_size
    hook = SizeOnlyHook()
    monkeypatch.setattr(BatchCreateOperator, "hook", property(lambda self: hook))
    small = tmp_path / "small.jsonl"
    small.write_text(path.open().readline())
    with pytest.raises(TaskDeferred):  # warm up: lazy imports of object storage are not the input's cost
        BatchCreateOperator(task_id="warm_up", requests=small.as_uri(), deferrable=True).execute(context())
    op = BatchCreateOperator(
        task_id="create", requests=path.as_uri(), deferrable=True, max_bytes_per_batch=16_000_000
    )
    tracemalloc.start()
    try:
        with pytest.raises(TaskDeferred) as info:
            op.execute(context())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    group = info.value.kwargs["group"]
    assert group["total_requests"] == REQUESTS and len(group["batch_ids"]) == 3
    # Holding the file (or one batch body) would need at least its size; streaming needs a small fraction.
    assert file_bytes > 38_000_000
    assert peak < file_bytes / 8, f"peak {peak} bytes for a {file_bytes}-byte file"
