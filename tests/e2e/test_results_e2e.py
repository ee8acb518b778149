"""BatchResultsOperator in real Airflow (dag.test: metadata DB, task runner) against the emulator."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def test_results_operator_lands_a_templated_destination_and_emits_its_asset(
    run_dag: Any, emulator: Any, tmp_path: Path
) -> None:
    result = run_dag("e2e_results_landing", emulator)

    assert result.state == "success", result.tasks
    manifest = result.xcom["land"]
    (batch_id,) = result.xcom["create"]["batch_ids"]
    (day,) = (tmp_path / "results").iterdir()  # {{ ds }} rendered
    assert manifest["destination"] == f"{tmp_path.as_uri()}/results/{day.name}"
    assert manifest["counts"] == {"succeeded": 4, "errored": 2, "canceled": 0, "expired": 0}
    assert sorted(p.name for p in (day / batch_id).iterdir()) == ["errored.jsonl.gz", "succeeded.jsonl.gz"]
    succeeded = gzip.decompress((day / batch_id / "succeeded.jsonl.gz").read_bytes()).splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in succeeded) == [f"land-{n}" for n in range(2, 6)]
    assert result.xcom["consume"] == {"files": 2, "lines": 6}

    # The templated destination is declared through the alias; the run attached the rendered URI to it.
    from airflow.models.asset import AssetAliasModel, AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        alias = session.query(AssetAliasModel).filter_by(name="e2e-results").one()
        uris = [asset.uri for asset in alias.assets]
        assert manifest["destination"] in uris
        asset = session.query(AssetModel).filter_by(uri=manifest["destination"]).one()
        events = session.query(AssetEvent).filter_by(asset_id=asset.id).all()
    assert events and events[-1].extra["files"] == [f["uri"] for f in manifest["files"]]
    assert events[-1].extra["counts"] == manifest["counts"]
