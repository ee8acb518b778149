"""``RequestTemplate``: one Messages request per input record, rendered with Airflow's sandboxed Jinja.

Every string in ``custom_id`` and ``params`` that contains Jinja is compiled once and rendered per record
with ``record`` (the record's fields) and ``number`` (its 1-based position) in scope; other values are copied
as they are (dict keys are never rendered). Undefined names fail (``StrictUndefined``), and the scope has
nothing but the record, so the same records always give the same requests byte for byte: the create
ledger's fingerprint and a resubmit round's re-read depend on that.

A string that fails to render does not stop the task at once: it becomes a problem naming the record
(``records.csv line 12``) and the field (``params.messages[0].content``), reported with every other
problem of the input by ``spool_batches`` before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jinja2

# Airflow's own sandbox class (the one task templates use); it has no public import path.
from airflow.sdk.definitions._internal.templater import SandboxedEnvironment

from airflow_batches.api.errors import ValidationProblem
from airflow_batches.api.requests import SourcedRequest
from airflow_batches.records.readers import Record, iter_records
from airflow_batches.records.structured import OutputSchema, StructuredOutput

__all__ = ["RequestTemplate"]

_Renderer = Callable[[Mapping[str, Any]], Any]


def _environment() -> jinja2.Environment:
    # Airflow's sandbox (no access to dunder attributes) with its filters; strict so a typo in a field name
    # is an error instead of an empty prompt; trailing newlines kept so text is rendered as written.
    return SandboxedEnvironment(  # type: ignore[no-untyped-call]
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, cache_size=0
    )


class _RenderError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _compile(value: Any, field: str, env: jinja2.Environment) -> _Renderer:
    """A function rendering ``value`` (a tree of JSON values) for one record's scope."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return lambda scope: value
        try:
            template = env.from_string(value)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(
                f"RequestTemplate {field}: Jinja syntax error on line {exc.lineno}: {exc}"
            ) from None

        def render(scope: Mapping[str, Any]) -> str:
            try:
                return template.render(scope)
            except jinja2.UndefinedError as exc:
                raise _RenderError(field, f"cannot render: {exc}") from None
            except Exception as exc:  # any error raised by a filter or expression on this record's data
                raise _RenderError(field, f"cannot render: {type(exc).__name__}: {exc}") from None

        return render
    if isinstance(value, Mapping):
        parts = [(key, _compile(item, f"{field}.{key}", env)) for key, item in value.items()]
        return lambda scope: {key: part(scope) for key, part in parts}
    if isinstance(value, list | tuple):
        items = [_compile(item, f"{field}[{index}]", env) for index, item in enumerate(value)]
        return lambda scope: [item(scope) for item in items]
    return lambda scope: value


class RequestTemplate:
    """Requests made from records: ``BatchCreateOperator(requests=RequestTemplate(...))``.

    :param records: the URI (templated, e.g. ``s3://bucket/in/{{ ds }}/records.csv``) or
        ``ObjectStoragePath`` of a JSONL, CSV or Parquet file, a list of mappings, or an ``XComArg``
        holding either. Parquet needs ``pip install 'airflow-batches[parquet]'``.
    :param custom_id: Jinja for each request's ``custom_id``, e.g. ``"rec-{{ record.id }}"``.
    :param params: the Messages request body, any string of which may use ``{{ record.<field> }}`` and
        ``{{ number }}``; blocks such as a shared system prompt with ``cache_control`` are sent as written.
    :param records_format: ``"jsonl"``, ``"csv"`` or ``"parquet"`` when the file name does not say.
    :param records_conn_id: the object storage connection of a records file (default: the one in the URI,
        ``s3://conn_id@bucket/...``, else the scheme's usual one, ``aws_default`` for ``s3://``), as
        ``requests_conn_id`` for a requests file.
    :param output_schema: a JSON Schema (dict) or a pydantic model: every request asks for JSON of that
        shape (``output_config.format`` on models that support it, else a forced tool call), and the
        results table validates each answer against it.
    :param output_mode: ``"auto"`` (by model), ``"json"`` or ``"tool"``.
    """

    template_fields: Sequence[str] = ("records",)

    def __init__(
        self,
        *,
        records: Any,
        custom_id: str,
        params: Mapping[str, Any],
        records_format: str | None = None,
        records_conn_id: str | None = None,
        output_schema: OutputSchema | None = None,
        output_mode: str = "auto",
    ) -> None:
        if not isinstance(custom_id, str) or not custom_id:
            raise ValueError('RequestTemplate custom_id must be a Jinja string, e.g. "rec-{{ record.id }}"')
        if not isinstance(params, Mapping):
            raise ValueError("RequestTemplate params must be a mapping: the Messages request body")
        self.records = records
        self.custom_id = custom_id
        self.params = params
        self.records_format = records_format
        self.records_conn_id = records_conn_id
        self.structured = StructuredOutput(output_schema, mode=output_mode) if output_schema else None
        env = _environment()
        # Compiled now, so a syntax error fails when the DAG is parsed.
        self._custom_id = _compile(custom_id, "custom_id", env)
        self._params = _compile(dict(params), "params", env)

    def __repr__(self) -> str:
        return f"RequestTemplate(records={self.records!r}, custom_id={self.custom_id!r})"

    def describe(self) -> str:
        if isinstance(self.records, str):
            return f"records file {self.records.strip()}"
        return "records" if not isinstance(self.records, list) else f"{len(self.records)} inline records"

    def iter_records(self) -> Iterator[Record]:
        return iter_records(self.records, fmt=self.records_format, conn_id=self.records_conn_id)

    def custom_id_of(self, record: Record) -> str:
        """The custom_id ``record`` gets (raises ``ValueError`` naming the record when it cannot render)."""
        try:
            return str(self._custom_id(_scope(record)))
        except _RenderError as exc:
            raise ValueError(f"{record.origin}: custom_id {exc}") from None

    def render(self, record: Record) -> SourcedRequest:
        """The request for one record, or the problems that kept it from rendering."""
        scope = _scope(record)
        problems: list[ValidationProblem] = []
        custom_id: Any = None
        params: Any = None
        try:
            custom_id = self._custom_id(scope)
        except _RenderError as exc:
            problems.append(_problem(record, exc))
        try:
            params = self._params(scope)
        except _RenderError as exc:
            problems.append(_problem(record, exc, custom_id))
        if params is not None and self.structured is not None:
            params = self.structured.apply(params)
        return SourcedRequest({"custom_id": custom_id, "params": params}, record.origin, tuple(problems))

    def requests(self) -> Iterator[SourcedRequest]:
        """Every record's request, in record order, one at a time."""
        for record in self.iter_records():
            yield self.render(record)


def _scope(record: Record) -> dict[str, Any]:
    return {"record": record.data, "number": record.number}


def _problem(record: Record, exc: _RenderError, custom_id: Any = None) -> ValidationProblem:
    return ValidationProblem(
        str(exc),
        origin=record.origin,
        custom_id=custom_id if isinstance(custom_id, str) else None,
        field=exc.field,
        fix=f"this record's fields are {', '.join(map(str, record.data))[:200]}; use one of them "
        "(record.<field>) or give the record that field",
    )
