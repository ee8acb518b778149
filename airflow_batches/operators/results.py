"""``BatchResultsOperator``: land the results of ended batches in object storage and return the manifest.

The destination is declared as an Airflow Asset outlet:

* a destination without Jinja (a plain URI or an ``ObjectStoragePath``) is a static ``Asset`` of that URI,
  known at parse time, so asset-scheduled DAGs can depend on it directly;
* a templated destination (``s3://bucket/claude/{{ ds }}/``) is only known at run time, and Airflow 3 only
  allows run-time assets through an ``AssetAlias``: the operator declares an alias (named after the template
  unless ``asset_alias`` is given) and, after landing, attaches an ``Asset`` of the rendered URI to it. A DAG
  scheduled on the alias runs on every landing; the event's ``extra`` carries a summary of the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseOperator, ObjectStoragePath

from airflow_batches.batch_ref import BatchRef
from airflow_batches.records.structured import OutputSchema, StructuredOutput
from airflow_batches.records.template import RequestTemplate
from airflow_batches.results.manifest import Manifest
from airflow_batches.results.options import (
    Compression,
    LandingOptions,
    OverwritePolicy,
    check_destination,
    check_options,
)
from airflow_batches.results.sink import clean_uri
from airflow_batches.results.table import TableFormat, TableSpec, land_table
from airflow_batches.storage_path import storage_path

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["BatchResultsOperator"]


class BatchResultsOperator(BaseOperator):
    """Stream the results of one batch or a batch group into ``destination`` (a directory-like URI prefix).

    Each batch lands as ``<destination>/<batch_id>.jsonl`` (``.jsonl.gz`` with ``compression="gzip"``), or as
    ``<destination>/<batch_id>/<result_type>.jsonl`` with ``split_by_type=True``; lines are written byte for
    byte as the API sent them, checked against the batch's request counts, and appear atomically. Returns the
    manifest (URIs, counts, bytes, sha256, token usage), never the results.

    :param batch_id: a batch id, a list of ids, or the ``BatchCreateOperator`` return value (templated).
    :param destination: a URI or ``ObjectStoragePath`` prefix (templated), e.g.
        ``s3://bucket/claude/{{ ds }}/``.
    :param conn_id: the Anthropic connection.
    :param destination_conn_id: the object storage connection (default: the one in the URI, as in
        ``s3://conn_id@bucket/...``, else the scheme's usual one: ``aws_default`` for ``s3://``,
        ``google_cloud_default`` for ``gs://``).
    :param split_by_type: one file per result type.
    :param overwrite: what to do when a destination file exists: ``"replace"`` (default, atomic), ``"error"``
        (fail before downloading), or ``"skip"`` (keep files that pass the checks, land the rest).
    :param compression: ``None`` or ``"gzip"``.
    :param wait: wait for batches that have not ended yet instead of failing.
    :param wait_timeout: seconds to wait at most when ``wait`` is set.
    :param max_attempts: downloads per batch when the stream breaks.
    :param asset_alias: the name of the ``AssetAlias`` used for a templated destination.
    :param emit_asset: declare the destination (and the table) as outlets at all.
    :param table: also write ``<destination>/table.<format>`` (``"parquet"``, ``"csv"`` or ``"jsonl"``): one
        row per request (see ``airflow_batches.results.table``), described in the manifest under ``table``.
    :param output_schema: check each answer against this JSON Schema or pydantic model: ``valid``,
        ``invalid_reason`` and one column per top-level field (default: the ``join_records`` template's).
    :param join_records: the ``RequestTemplate`` that made the requests: the table follows its records, one
        row per record with ``record_<field>`` columns (its ``records`` URI is templated here too).
    :param prices: ``{model: {"input": ..., "output": ..., "cache_write": ..., "cache_read": ...}}`` in USD
        per million tokens at batch prices, over the package's table (``airflow_batches.cost.prices``), for
        the manifest's ``cost``. Checked when the DAG is parsed.
    """

    template_fields: Sequence[str] = ("batch_id", "destination", "join_records")
    ui_color = "#e8d8c3"

    def __init__(
        self,
        *,
        batch_id: BatchRef,
        destination: str | ObjectStoragePath,
        conn_id: str = "anthropic_default",
        destination_conn_id: str | None = None,
        split_by_type: bool = False,
        overwrite: OverwritePolicy | bool = "replace",
        compression: Compression | None = None,
        wait: bool = False,
        wait_timeout: float = 3600.0,
        max_attempts: int = 3,
        asset_alias: str | None = None,
        emit_asset: bool = True,
        table: TableFormat | None = None,
        output_schema: OutputSchema | None = None,
        join_records: RequestTemplate | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        **kwargs: Any,
    ) -> None:
        # Checked now, when the DAG is parsed, like the create operator's arguments.
        self.options: LandingOptions = {
            "destination_conn_id": destination_conn_id,
            "split_by_type": split_by_type,
            "overwrite": overwrite,
            "compression": compression,
            "wait": wait,
            "wait_timeout": wait_timeout,
            "max_attempts": max_attempts,
            "prices": prices,
        }
        self.settings = check_options(self.options)
        if isinstance(destination, str) and not _is_templated(destination):
            check_destination(destination)
        self.table_spec = _table_spec(table, output_schema, join_records)
        if emit_asset and "outlets" not in kwargs:
            kwargs["outlets"] = _outlets_for(destination, asset_alias, self.table_spec)
        super().__init__(**kwargs)
        self.join_records = join_records
        self.batch_id = batch_id
        self.destination = destination
        self.conn_id = conn_id
        self.emit_asset = emit_asset
        self._manifest: Manifest | None = None

    def execute(self, context: Context) -> Manifest:
        from airflow_batches.hooks import BatchHook

        manifest = BatchHook(conn_id=self.conn_id).land_results(
            self.batch_id, self.destination, **self.options
        )
        if self.table_spec is not None:
            spec = TableSpec(self.table_spec.format, self.table_spec.structured, self.join_records)
            manifest["table"] = land_table(
                manifest,
                self._base(),
                spec,
                overwrite=str(self.settings.overwrite),
                block_size=self.settings.block_size,
            )
            self.log.info("Table %s: %s", manifest["table"]["uri"], _table_summary(manifest["table"]))
        self._manifest = manifest
        if self.emit_asset:
            self._record_asset_event(context, manifest)
        return manifest

    def _base(self) -> ObjectStoragePath:
        """The destination with the storage connection the landing used (the manifest's URI has none)."""
        destination = self.destination
        if not isinstance(destination, ObjectStoragePath):
            destination = check_destination(destination)
        return storage_path(destination, self.settings.destination_conn_id)

    def _record_asset_event(self, context: Context, manifest: Manifest) -> None:
        extra = _event_extra(manifest)
        outlet_events = context["outlet_events"]
        table = manifest.get("table")
        table_extra: dict[str, Any] = {"table": dict(table)} if table is not None else {}
        for outlet in self.outlets:
            if isinstance(outlet, AssetAlias):
                outlet_events[outlet].add(_asset(manifest["destination"]), extra=extra)
                if table is not None:
                    outlet_events[outlet].add(_asset(table["uri"]), extra=table_extra)
            elif isinstance(outlet, Asset) and table is not None and outlet.uri == _asset(table["uri"]).uri:
                outlet_events[outlet].extra.update(table_extra)
            elif isinstance(outlet, Asset):
                outlet_events[outlet].extra.update(extra)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs: the batches, outputs: the landed files; None when OpenLineage is not installed."""
        try:
            from airflow.providers.openlineage.extractors import OperatorLineage
            from openlineage.client.event_v2 import Dataset
        except ImportError:
            return None
        if self._manifest is None:
            return OperatorLineage()
        inputs = [
            Dataset(namespace="anthropic", name=f"message_batches/{b}") for b in self._manifest["batch_ids"]
        ]
        outputs = []
        for file in self._manifest["files"]:
            namespace, name = _openlineage_name(file["uri"])
            outputs.append(Dataset(namespace=namespace, name=name))
        return OperatorLineage(inputs=inputs, outputs=outputs)


def _openlineage_name(uri: str) -> tuple[str, str]:
    """OpenLineage dataset naming of a stored object: ``s3://bucket`` + key, or ``file`` + absolute path."""
    scheme, _, rest = clean_uri(uri).partition("://")
    authority, _, path = rest.partition("/")
    if scheme in ("file", "local"):
        return "file", "/" + path
    return f"{scheme}://{authority}", path


def _outlets_for(
    destination: str | ObjectStoragePath, alias: str | None, table: TableSpec | None
) -> list[Asset | AssetAlias]:
    """The destination's Asset (or the alias of a templated one), and the table's Asset when it is static."""
    if isinstance(destination, str) and _is_templated(destination):
        return [AssetAlias(name=alias or f"airflow-batches-results:{destination}")]
    outlets: list[Asset | AssetAlias] = [_asset(str(destination))]
    if table is not None:
        outlets.append(_asset(f"{clean_uri(str(destination)).rstrip('/')}/table.{table.format}"))
    return outlets


def _table_spec(
    table: TableFormat | None, output_schema: OutputSchema | None, join: RequestTemplate | None
) -> TableSpec | None:
    if table is None:
        if output_schema is not None or join is not None:
            raise ValueError(
                "output_schema and join_records describe the table: set table='parquet'|'csv'|'jsonl'"
            )
        return None
    structured = StructuredOutput(output_schema) if output_schema is not None else None
    if structured is None and join is not None:
        structured = join.structured
    return TableSpec(table, structured, join)


def _table_summary(table: Any) -> str:
    parts = [f"{table['rows']} rows", ", ".join(f"{k}={v}" for k, v in sorted(table["result_types"].items()))]
    if table["valid"] or table["invalid"]:
        parts.append(f"valid={table['valid']} invalid={table['invalid']}")
    if table["joined_records"] is not None:
        parts.append(f"joined to {table['joined_records']} records")
    return "; ".join(parts)


def _is_templated(text: str) -> bool:
    return "{{" in text or "{%" in text


def _asset(destination: str) -> Asset:
    """The Asset of a destination prefix; one spelling (no conn id, no trailing slash) for name and URI."""
    uri = clean_uri(destination).rstrip("/")
    return Asset(name=uri, uri=uri)


def _event_extra(manifest: Manifest) -> dict[str, Any]:
    return {
        "destination": manifest["destination"],
        "batch_ids": list(manifest["batch_ids"]),
        "files": [file["uri"] for file in manifest["files"]],
        "counts": dict(manifest["counts"]),
        "lines": manifest["lines"],
        "bytes": manifest["bytes"],
    }
