"""Fixtures of the results unit tests."""

from __future__ import annotations

import pytest
from results_helpers import FakeAPI


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()
