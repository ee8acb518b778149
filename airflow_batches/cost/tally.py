"""What a cost plan needs from the requests, gathered while they are validated and spooled (one pass).

Per model: requests, bytes, the sum of ``max_tokens``, and a deterministic sample for token counting: the
``sample_size`` requests whose custom_id hashes lowest. That is a uniform sample that does not depend on the
input's order or size, needs no second pass, and keeps at most ``sample_size`` request bodies per model.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field

from airflow_batches.api.requests import EncodedRequest

__all__ = ["DEFAULT_SAMPLE_SIZE", "ModelTally", "RequestTally"]

DEFAULT_SAMPLE_SIZE = 100


def _rank(custom_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(custom_id.encode(), digest_size=8).digest(), "big")


@dataclass
class ModelTally:
    requests: int = 0
    nbytes: int = 0
    max_tokens: int = 0
    # Max-heap by rank (negated) of (-rank, custom_id, request JSON): the lowest ranks seen so far.
    _heap: list[tuple[int, str, bytes]] = field(default_factory=list)

    def add(self, request: EncodedRequest, sample_size: int) -> None:
        self.requests += 1
        self.nbytes += len(request.data)
        self.max_tokens += request.max_tokens
        entry = (-_rank(request.custom_id), request.custom_id, request.data)
        if len(self._heap) < sample_size:
            heapq.heappush(self._heap, entry)
        elif entry > self._heap[0]:
            heapq.heapreplace(self._heap, entry)

    def sample(self) -> list[tuple[str, bytes]]:
        """The sampled requests, ``(custom_id, request JSON)``, in rank order (deterministic)."""
        return [(custom_id, data) for _, custom_id, data in sorted(self._heap, reverse=True)]


class RequestTally:
    """Pass as ``spool_batches(..., observe=tally)``; read ``models`` afterwards."""

    def __init__(self, sample_size: int = DEFAULT_SAMPLE_SIZE) -> None:
        if sample_size < 1:
            raise ValueError(f"sample_size must be >= 1, got {sample_size}")
        self.sample_size = sample_size
        self.models: dict[str, ModelTally] = {}

    def __call__(self, request: EncodedRequest) -> None:
        tally = self.models.get(request.model)
        if tally is None:
            tally = self.models[request.model] = ModelTally()
        tally.add(request, self.sample_size)
