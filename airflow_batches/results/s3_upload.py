"""One S3 object written as a multipart upload whose parts go up concurrently, visible only when committed.

s3fs's own file uploads one part at a time (the writer waits for each), where ``put`` sends ten at once: on a
server that takes a part's whole duration to store it, the landing then waited for every part in turn. Here
each full part is handed to s3fs's event loop (``S3FileSystem._call_s3``, the call ``put`` makes) and the
writer goes on at once; at most ``in_flight`` parts are uploading, so memory stays bounded at about
``in_flight`` parts. The parts are numbered in the order their bytes were written, whatever order they finish
in. The upload is completed only in :meth:`PartsUpload.commit`; :meth:`PartsUpload.discard` waits for the
parts still uploading and aborts it, so a failure leaves no object and no unfinished upload. A part that
failed is raised when the next part is sent, by :meth:`close` or by :meth:`commit`. An object smaller than
one part is sent in one ``put_object`` at commit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

__all__ = ["MIN_PART_BYTES", "PartsUpload"]

MIN_PART_BYTES = 5 * 2**20  # S3's least size of every part but the last


class PartsUpload:
    """A binary file-like writer of ``path`` on the s3fs filesystem ``fs``; one writer thread at a time."""

    def __init__(self, fs: Any, path: str, *, part_bytes: int, in_flight: int) -> None:
        self._fs = fs
        self._path = path
        self._bucket, self._key, _ = fs.split_path(path)
        self._part_bytes = max(part_bytes, MIN_PART_BYTES)
        self._in_flight = in_flight
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._upload_id: str | None = None
        self._parts: list[concurrent.futures.Future[dict[str, Any]]] = []  # by part number - 1
        self._checked = 0  # parts before this one have finished and succeeded
        self.closed = False

    def write(self, data: bytes) -> int:
        if self.closed:
            raise ValueError("write to a closed upload")
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= self._part_bytes:
            self._send_buffer()
        return len(data)

    def flush(self) -> None:
        """Nothing to do: a part goes up when it is full, the last one at :meth:`close`."""

    def close(self) -> None:
        """Send the last part (if the object is larger than one part) and wait for every part."""
        if self.closed:
            return
        if self._upload_id is not None and self._buffered:
            self._send_buffer()
        self._wait_until(len(self._parts))
        self.closed = True

    def commit(self) -> None:
        """Make the object appear under its key, whole, in one step (after :meth:`close`)."""
        self.close()
        if self._upload_id is None:
            self._call("put_object", Body=b"".join(self._buffer))
        else:
            parts = []
            for number, future in enumerate(self._parts, start=1):
                answer = future.result()
                part = {"PartNumber": number, "ETag": answer["ETag"]}
                if "ChecksumSHA256" in answer:
                    part["ChecksumSHA256"] = answer["ChecksumSHA256"]
                parts.append(part)
            self._call(
                "complete_multipart_upload", UploadId=self._upload_id, MultipartUpload={"Parts": parts}
            )
        self._buffer = []
        self._fs.invalidate_cache(self._path)

    def discard(self) -> None:
        """Abort the upload after the parts still uploading have finished (S3 may keep a part that arrives
        after the abort); raises only if the abort itself fails."""
        self.closed = True
        self._buffer = []
        concurrent.futures.wait(self._parts)
        if self._upload_id is not None:
            self._call("abort_multipart_upload", UploadId=self._upload_id)
            self._upload_id = None

    def _send_buffer(self) -> None:
        body = b"".join(self._buffer)
        self._buffer = []
        self._buffered = 0
        if self._upload_id is None:
            self._upload_id = self._call("create_multipart_upload")["UploadId"]
        self._wait_until(len(self._parts) + 1 - self._in_flight)
        self._parts.append(
            asyncio.run_coroutine_threadsafe(
                self._fs._call_s3(
                    "upload_part",
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    PartNumber=len(self._parts) + 1,
                    Body=body,
                ),
                self._fs.loop,
            )
        )

    def _wait_until(self, finished: int) -> None:
        """Wait until the first ``finished`` parts are done; raise the first failure among the parts done."""
        while self._checked < finished:
            self._parts[self._checked].result()
            self._checked += 1
        for future in self._parts[self._checked :]:
            if future.done():
                future.result()

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self._fs.call_s3(method, Bucket=self._bucket, Key=self._key, **kwargs)
