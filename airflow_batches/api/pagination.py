"""Walking the batch list page by page with the API's cursor rule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any

from .models import MessageBatch, MessageBatchPage

__all__ = ["BatchPager", "PageFetcher"]

PageFetcher = Callable[[int | None, str | None, str | None], Awaitable[MessageBatchPage]]
"""``fetch(limit, before_id, after_id)`` returning one page."""


class BatchPager:
    """``async for b in pager`` walks all pages; ``pager.pages()`` yields pages; ``await pager``: page one.

    Next-page rule (the SDK's): stop when ``has_more`` is false, the page is empty or its cursor is missing;
    a walk that started with ``before_id`` (towards newer batches) continues with ``before_id=first_id``,
    any other with ``after_id=last_id``.
    """

    def __init__(
        self, fetch: PageFetcher, *, limit: int | None, before_id: str | None, after_id: str | None
    ) -> None:
        self._fetch = fetch
        self._limit = limit
        self._before_id = before_id
        self._after_id = after_id

    def __await__(self) -> Generator[Any, None, MessageBatchPage]:
        return self._fetch(self._limit, self._before_id, self._after_id).__await__()

    async def pages(self) -> AsyncIterator[MessageBatchPage]:
        before_id, after_id = self._before_id, self._after_id
        while True:
            page = await self._fetch(self._limit, before_id, after_id)
            yield page
            if not page.has_more or not page.data:
                return
            if self._before_id is not None:
                before_id = page.first_id
                if before_id is None:
                    return
            else:
                after_id = page.last_id
                if after_id is None:
                    return

    async def __aiter__(self) -> AsyncIterator[MessageBatch]:
        async for page in self.pages():
            for batch in page.data:
                yield batch
