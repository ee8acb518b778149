"""Records in, a table out, in real Airflow: a CSV through BatchCreateOperator(RequestTemplate) and a Parquet
file through @task.anthropic_batch, both asking for structured output, each landed with a joined table.

The records are written by the test under the Variable ``e2e_output``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task
from pydantic import BaseModel

from airflow_batches.operators import BatchCreateOperator, BatchResultsOperator
from airflow_batches.records import RequestTemplate

OUTPUT = "{{ var.value.e2e_output }}"


class Triage(BaseModel):
    label: str
    priority: int


def ticket_template(records: str, prefix: str) -> RequestTemplate:
    return RequestTemplate(
        records=records,
        custom_id=prefix + "-{{ record.id }}",
        params={
            "model": "claude-haiku-4-5" if prefix == "csv" else "claude-3-5-haiku-20241022",
            "max_tokens": 128,
            "system": [
                {"type": "text", "text": "Triage the ticket.", "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [{"role": "user", "content": "Ticket {{ record.id }}: {{ record.text }}"}],
        },
        output_schema=Triage,
    )


with DAG("e2e_records_table", start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
    csv_template = ticket_template(OUTPUT + "/records.csv", "csv")
    parquet_template = ticket_template(OUTPUT + "/records.parquet", "pq")

    create_csv = BatchCreateOperator(
        task_id="create_csv", requests=csv_template, deferrable=True, poll_interval=0.5
    )

    @task.anthropic_batch(deferrable=True, poll_interval=0.5)
    def create_parquet() -> RequestTemplate:
        return parquet_template

    land_csv = BatchResultsOperator(
        task_id="land_csv",
        batch_id=create_csv.output,
        destination=OUTPUT + "/out/csv/",
        table="parquet",
        join_records=csv_template,
    )
    created = create_parquet()
    land_parquet = BatchResultsOperator(
        task_id="land_parquet",
        batch_id=created,
        destination=OUTPUT + "/out/parquet/",
        table="csv",
        join_records=parquet_template,
    )
