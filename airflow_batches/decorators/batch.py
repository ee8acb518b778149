"""``@task.anthropic_batch``: a function returns the requests, the task submits them and waits.

The function returns what ``BatchCreateOperator(requests=...)`` takes: a list of ``{custom_id, params}``,
the URI of a JSONL file, or a ``RequestTemplate`` (its ``records`` URI rendered with the run's context). Every
other argument of the decorator is a ``BatchCreateOperator`` argument (``deferrable``, ``resubmit_rounds``,
``max_cost_usd``, ``plan_only``, ...), and the task returns what the operator returns (the batch group, or
the plan with ``plan_only``).

The function runs when the task starts and, with ``resubmit_rounds``, again when a round ends (the later
rounds re-read the original requests), so it must return the same requests for the same run: read from
storage or compute from the arguments, never from the clock or a random draw.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    SET_DURING_EXECUTION,
    DecoratedOperator,
    TaskDecorator,
    context_merge,
    determine_kwargs,
    task_decorator_factory,
)

from airflow_batches.batch_ref import BatchGroup
from airflow_batches.operators.create import BatchCreateOperator
from airflow_batches.operators.request_source import as_literal
from airflow_batches.records.template import RequestTemplate

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["anthropic_batch_task"]


class _AnthropicBatchDecoratedOperator(DecoratedOperator, BatchCreateOperator):
    """``BatchCreateOperator`` whose requests are the return value of the decorated function."""

    template_fields: Sequence[str] = (*DecoratedOperator.template_fields, "default_model")
    template_fields_renderers: ClassVar[dict[str, str]] = {**DecoratedOperator.template_fields_renderers}
    custom_operator_name = "@task.anthropic_batch"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("multiple_outputs", None)  # the return value is the batch group, one XCom
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            requests=SET_DURING_EXECUTION,
            multiple_outputs=False,
            **kwargs,
        )

    def execute(self, context: Context) -> BatchGroup | dict[str, Any]:
        self._build_requests(context)
        return BatchCreateOperator.execute(self, context)

    def execute_complete(
        self, context: Context, event: Any, group: BatchGroup | None = None, deadline: float | None = None
    ) -> BatchGroup:
        if self.resubmit_rounds:
            self._build_requests(context)  # a next round re-reads the original requests
        return BatchCreateOperator.execute_complete(self, context, event, group=group, deadline=deadline)

    def _build_requests(self, context: Context) -> None:
        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        requests = self.python_callable(*self.op_args, **kwargs)
        if requests is None:
            raise TypeError(
                f"@task.anthropic_batch function {self.python_callable.__name__} returned None; return a "
                "list of requests, a JSONL URI or a RequestTemplate"
            )
        if isinstance(requests, RequestTemplate):
            # Its records URI may use the run's values ({{ ds }}), as in the operator's template fields.
            requests.records = self.render_template(requests.records, context)
        self.requests = as_literal(requests)


def anthropic_batch_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
    """``@task.anthropic_batch(...)``: see the module docstring; keyword arguments go to the operator."""
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_AnthropicBatchDecoratedOperator,
        **kwargs,
    )
