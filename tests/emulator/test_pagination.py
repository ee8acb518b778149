"""List: newest first, exclusive cursors in both directions, has_more per direction, limit rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def page(api: httpx.Client, **query: Any) -> dict[str, Any]:
    response = api.get("/v1/messages/batches", params=query)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"data", "has_more", "first_id", "last_id"}
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [batch["id"] for batch in body["data"]]


@pytest.fixture
def seven(batches) -> list[str]:
    """Seven batch ids, newest first."""
    created = [batches.create([batches.request(f"b{i}")])["id"] for i in range(7)]
    return created[::-1]


def test_walking_older_with_after_id_visits_every_batch_once(api: httpx.Client, seven: list[str]) -> None:
    first = page(api, limit=3)
    assert ids(first) == seven[0:3]
    assert (first["first_id"], first["last_id"], first["has_more"]) == (seven[0], seven[2], True)
    second = page(api, limit=3, after_id=first["last_id"])
    assert ids(second) == seven[3:6]
    assert second["has_more"] is True
    third = page(api, limit=3, after_id=second["last_id"])
    assert ids(third) == seven[6:7]
    assert third["has_more"] is False
    assert (third["first_id"], third["last_id"]) == (seven[6], seven[6])
    empty = page(api, limit=3, after_id=third["last_id"])
    assert empty == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_walking_newer_with_before_id_visits_every_batch_once(api: httpx.Client, seven: list[str]) -> None:
    oldest = seven[-1]
    first = page(api, limit=2, before_id=oldest)
    assert ids(first) == seven[4:6], "the page right before the cursor, still newest first"
    assert first["has_more"] is True
    second = page(api, limit=2, before_id=first["first_id"])
    assert ids(second) == seven[2:4]
    assert second["has_more"] is True
    third = page(api, limit=2, before_id=second["first_id"])
    assert ids(third) == seven[0:2]
    assert third["has_more"] is False
    assert page(api, limit=2, before_id=seven[0])["data"] == []


def test_default_limit_is_20(api: httpx.Client, batches) -> None:
    for i in range(21):
        batches.create([batches.request(f"b{i}")])
    body = page(api)
    assert len(body["data"]) == 20
    assert body["has_more"] is True
    assert len(page(api, limit=1000)["data"]) == 21


def test_deleted_batch_disappears_but_its_id_still_works_as_a_cursor(
    api: httpx.Client, seven: list[str]
) -> None:
    gone = seven[3]
    assert api.delete(f"/v1/messages/batches/{gone}").status_code == 200
    assert gone not in ids(page(api, limit=100))
    assert ids(page(api, limit=2, after_id=gone)) == seven[4:6]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": 0}, "limit: Input should be between 1 and 1000"),
        ({"limit": 1001}, "limit: Input should be between 1 and 1000"),
        ({"limit": "ten"}, "limit: Input should be a valid integer"),
        ({"before_id": "a", "after_id": "b"}, "before_id and after_id cannot be used together"),
        ({"after_id": "msgbatch_never"}, "after_id: no message batch with id 'msgbatch_never'"),
    ],
)
def test_bad_list_queries_are_400(api: httpx.Client, query: dict[str, Any], message: str) -> None:
    response = api.get("/v1/messages/batches", params=query)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert message in response.json()["error"]["message"]
