"""``BatchCreateOperator``: validate, split and submit requests as a group of batches, then wait for them.

Flow of one try:

1. Read the requests (inline, XCom, or a JSONL file streamed line by line) and spool them into ready-to-send
   bodies with ``spool_batches``: every problem in the input fails the task here, before any paid request.
2. Look up the create ledger (``airflow_batches.reattach``): batches an earlier try of this task made for the
   same input are reused; only the missing ones are created, each recorded right after ``create`` returns.
   The ledger also keeps when the first try started, so ``timeout`` is one deadline for every try.
3. Push the batch group to XCom, check the batches' state (all ended: finish now), then wait: defer to
   ``BatchTrigger`` (``deferrable=True``) or run the same trigger in the worker.
4. ``execute_complete`` validates the event, cancels on timeout only when ``cancel_on_timeout``.
5. With ``resubmit_rounds``: the ended round's results are streamed to find the requests worth sending again
   (``operators/resubmit.py``); they are spooled again from the original input (same bytes), created under
   that round's ledger and waited for (steps 2-4), up to ``resubmit_rounds`` times.
6. The partial-failure policy (``airflow_batches.outcome``) judges the final results; the group is returned
   (with ``report_cost``, with the cost of the usage every round's results report).

``dry_run`` stops after step 1 and returns the plan (``operators/cost_plan.py``); ``max_cost_usd`` checks the
plan of each round's batches between steps 1 and 2 (and 5 and 2), before anything of it is sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import XCOM_RETURN_KEY, BaseOperator, XComArg, conf

from airflow_batches.api.errors import (
    BatchAPIError,
    RequestValidationError,
)
from airflow_batches.api.requests import MAX_BATCH_BYTES, MAX_REQUESTS_PER_BATCH
from airflow_batches.api.retry import is_transient
from airflow_batches.api.spool import SpooledBatch, spool_batches
from airflow_batches.batch_ref import BatchGroup, BatchSnapshot, batch_snapshot, group_of, new_group
from airflow_batches.cost.input_tokens import DEFAULT_COUNT_CONCURRENCY
from airflow_batches.cost.tally import DEFAULT_SAMPLE_SIZE, RequestTally
from airflow_batches.errors import BatchRequestsInvalidError
from airflow_batches.events import validate_event
from airflow_batches.hooks.batch import BatchHook
from airflow_batches.ledger_store import ledger_store
from airflow_batches.operators.cancelling import cancel_unfinished
from airflow_batches.operators.cost_plan import reported_cost, validate_cost_settings
from airflow_batches.operators.request_source import as_literal, describe_source, iter_request_items
from airflow_batches.operators.resubmit import (
    DEFAULT_RESUBMIT_ERROR_TYPES,
    find_resubmittable,
    first_round,
    next_round,
    validate_resubmit,
)
from airflow_batches.operators.submission import create_parts
from airflow_batches.outcome import OnAllCanceled, check_outcome, validate_policy
from airflow_batches.reattach import CreateLedger, group_fingerprint, round_key
from airflow_batches.records.template import RequestTemplate
from airflow_batches.triggers.batch import BatchTrigger
from airflow_batches.waiting import (
    DEFAULT_MAX_POLL_ERRORS,
    deferral_timeout,
    raise_for_event,
    validate_max_poll_errors,
    validate_wait_settings,
    wait_blocking,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["BatchCreateOperator"]


class BatchCreateOperator(BaseOperator):
    """Submit Message Batches requests (split into as many batches as needed) and wait for them to end.

    :param requests: a list of ``{"custom_id", "params"}`` objects (sent as written: no Jinja inside), an
        XCom value holding one, or the URI / ``ObjectStoragePath`` of a JSONL file with one request per line
        (streamed, never loaded whole; the URI is templated), or a
        :class:`~airflow_batches.records.RequestTemplate` turning records (JSONL, CSV, Parquet, a list) into
        requests one at a time.
    :param conn_id: Airflow connection (conn type ``anthropic_batches`` or ``anthropic``).
    :param requests_conn_id: the object storage connection of a requests file (default: the one in the URI,
        as in ``s3://conn_id@bucket/...``, else the scheme's usual one: ``aws_default`` for ``s3://``).
    :param default_model: ``params.model`` for requests that do not set one; unset, the connection's ``model``
        extra (as the official provider reads it) is used.
    :param deferrable: wait in the triggerer (frees the worker slot) instead of in the worker.
    :param wait_for_completion: wait until every batch has ended; ``False`` returns right after creating.
    :param poll_interval: seconds between state checks.
    :param timeout: seconds to wait, counted from the start of the first try that worked on this input: one
        absolute deadline kept across deferrals, triggerer restarts and retries (recorded in the create
        ledger). When it passes the task fails without retry; clearing it then waits a fresh ``timeout`` on
        the same batches.
    :param cancel_on_kill: cancel the batches when the task is killed (e.g. marked failed or success).
    :param cancel_on_timeout: cancel the batches when ``timeout`` passes; otherwise they keep running.
    :param max_poll_errors: consecutive polls failing with transient errors (connection, 5xx) that the wait
        tolerates before failing the task; throttling does not count. Used in both wait modes.
    :param max_failure_ratio: fail when errored + expired requests exceed this share of all requests.
    :param on_all_canceled: what to do when every request was canceled: ``fail``, ``skip`` or ``succeed``.
    :param max_requests_per_batch: split the input into batches of at most this many requests.
    :param max_bytes_per_batch: ... and at most this many bytes of request body.
    :param resubmit_rounds: once every batch ended, send the requests that came back ``expired`` or
        ``errored`` with a type in ``resubmit_error_types`` again (the original requests, byte for byte,
        read again from the input), up to this many follow-up rounds. A round with nothing to resend is
        not created; canceled requests are never resent. Needs ``wait_for_completion``.
    :param resubmit_error_types: the error types worth a second try (default overloaded, api, rate-limit
        and timeout errors); ``invalid_request_error``, ``authentication_error`` and ``permission_error``
        are refused.
    :param dry_run: validate and split as a real run does, send no batch, and return the plan: batches,
        requests, per model the input tokens, the sum of ``max_tokens`` and the cost range at batch prices.
    :param max_cost_usd: fail before anything is sent when the plan's maximum (input plus every request
        using all of its ``max_tokens``) is above this many US dollars, or a model has no price.
    :param prices: ``{model: {"input": ..., "output": ..., "cache_write": ..., "cache_read": ...}}`` in USD
        per million tokens at batch prices, over the package's table (``airflow_batches.cost.prices``).
    :param count_tokens: count input tokens with the API's free ``count_tokens`` endpoint for a plan (a
        deterministic sample of ``count_sample_size`` requests per model, scaled by bytes); ``False``
        estimates them locally without any request.
    :param report_cost: once the batches have ended, read their results (not stored) and add the cost of
        the usage they report to the return value as ``cost``.

    Returns the batch group (``batch_ids``, ``request_counts``, ``total_requests``, ``fingerprint``,
    ``processing_status``, ``counts``; with ``resubmit_rounds`` also ``rounds``, ``batch_ids`` then being
    every round's batches and ``counts`` each request once by its final result; ``cost`` after waiting with
    ``report_cost``), which ``BatchSensor`` and ``BatchResultsOperator`` accept unchanged; with ``dry_run``
    the plan instead.
    """

    template_fields: Sequence[str] = ("requests", "default_model")
    ui_color = "#d4a27f"

    def __init__(
        self,
        *,
        requests: Any,
        conn_id: str = "anthropic_default",
        requests_conn_id: str | None = None,
        default_model: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        wait_for_completion: bool = True,
        poll_interval: float = 30.0,
        timeout: float | None = None,
        cancel_on_kill: bool = False,
        cancel_on_timeout: bool = False,
        max_failure_ratio: float | None = None,
        on_all_canceled: OnAllCanceled = "fail",
        max_requests_per_batch: int = MAX_REQUESTS_PER_BATCH,
        max_bytes_per_batch: int = MAX_BATCH_BYTES,
        max_poll_errors: int = DEFAULT_MAX_POLL_ERRORS,
        dry_run: bool = False,
        max_cost_usd: float | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        count_tokens: bool = True,
        count_sample_size: int = DEFAULT_SAMPLE_SIZE,
        count_concurrency: int = DEFAULT_COUNT_CONCURRENCY,
        report_cost: bool = True,
        resubmit_rounds: int = 0,
        resubmit_error_types: Sequence[str] = DEFAULT_RESUBMIT_ERROR_TYPES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resubmit_error_types = validate_resubmit(resubmit_rounds, resubmit_error_types)
        if resubmit_rounds and not wait_for_completion:
            raise ValueError(
                "resubmit_rounds needs wait_for_completion=True: the failed requests are known only once "
                "every batch has ended"
            )
        validate_wait_settings(poll_interval, timeout)
        validate_max_poll_errors(max_poll_errors)
        if not 1 <= max_requests_per_batch <= MAX_REQUESTS_PER_BATCH:
            raise ValueError(
                f"max_requests_per_batch must be between 1 and {MAX_REQUESTS_PER_BATCH}, "
                f"got {max_requests_per_batch!r}"
            )
        if not 1 <= max_bytes_per_batch <= MAX_BATCH_BYTES:
            raise ValueError(
                f"max_bytes_per_batch must be between 1 and {MAX_BATCH_BYTES}, got {max_bytes_per_batch!r}"
            )
        validate_policy(max_failure_ratio, on_all_canceled)
        self.cost = validate_cost_settings(
            max_cost_usd, prices, count_tokens, count_sample_size, count_concurrency
        )
        self.plan_only = dry_run  # not ``self.dry_run``: BaseOperator.dry_run() is a method
        self.report_cost = report_cost
        self.requests = as_literal(requests)
        if isinstance(requests, RequestTemplate):
            # Airflow finds XComArgs only in operators' own template fields, not in nested objects.
            XComArg.apply_upstream_relationship(self, requests.records)
        self.conn_id = conn_id
        self.requests_conn_id = requests_conn_id
        self.default_model = default_model
        self.deferrable = deferrable
        self.wait_for_completion = wait_for_completion
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.cancel_on_kill = cancel_on_kill
        self.cancel_on_timeout = cancel_on_timeout
        self.max_failure_ratio = max_failure_ratio
        self.on_all_canceled = on_all_canceled
        self.max_requests_per_batch = max_requests_per_batch
        self.max_bytes_per_batch = max_bytes_per_batch
        self.max_poll_errors = max_poll_errors
        self.resubmit_rounds = resubmit_rounds
        self._batch_ids: list[str] = []

    @property
    def hook(self) -> BatchHook:
        return BatchHook(conn_id=self.conn_id)

    def execute(self, context: Context) -> BatchGroup | dict[str, Any]:
        hook = self.hook
        if self.plan_only:
            return self._dry_run(hook)
        group, ledger = self._submit(context, hook)
        if self.resubmit_rounds:
            group = first_round(group)
        self._batch_ids = list(group["batch_ids"])
        # Downstream tasks and humans see the ids while the task waits (and after a crash while waiting).
        context["ti"].xcom_push(key=XCOM_RETURN_KEY, value=group)
        if not self.wait_for_completion:
            CreateLedger.discard(ledger_store(context))
            return group
        return self._wait(context, hook, group, ledger.deadline(self.timeout))

    def _round_batch_ids(self, group: BatchGroup) -> list[str]:
        rounds = group.get("rounds")
        return list(rounds[-1]["batch_ids"]) if rounds else list(group["batch_ids"])

    def _wait(
        self, context: Context, hook: BatchHook, group: BatchGroup, deadline: float | None
    ) -> BatchGroup:
        """Wait for the current round's batches (deferring or in the worker), then end the round."""
        batch_ids = self._round_batch_ids(group)
        try:
            batches = [batch_snapshot(hook.retrieve(batch_id)) for batch_id in batch_ids]
        except BatchAPIError as exc:
            if not is_transient(exc):
                raise
            self.log.warning("Could not check the batches' state before waiting (%s); waiting anyway.", exc)
        else:
            if all(b["processing_status"] == "ended" for b in batches):
                self.log.info("Every batch has already ended; not waiting.")
                return self._end_round(context, hook, group, batches, deadline)

        trigger = BatchTrigger(
            batch_id=batch_ids,
            conn_id=self.conn_id,
            poll_interval=self.poll_interval,
            deadline=deadline,
            cancel_on_kill=self.cancel_on_kill,
            max_poll_errors=self.max_poll_errors,
        )
        if self.deferrable:
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                kwargs={"group": group, "deadline": deadline},
                timeout=deferral_timeout(trigger.deadline, self.poll_interval),
            )
        return self.execute_complete(context, wait_blocking(trigger), group=group, deadline=deadline)

    def execute_complete(
        self, context: Context, event: Any, group: BatchGroup | None = None, deadline: float | None = None
    ) -> BatchGroup:
        checked = validate_event(event)
        if group is None:
            # dag.test() resumes with the event alone; the group pushed before deferring is still in XCom
            # (Airflow clears a task's XComs when a new try starts, not when it resumes from deferral).
            pushed = context["ti"].xcom_pull(task_ids=self.task_id, key=XCOM_RETURN_KEY)
            group = cast("BatchGroup", pushed) if isinstance(pushed, Mapping) else None
        if checked["status"] == "timeout":
            CreateLedger.restart_clock(ledger_store(context))
        if checked["status"] == "timeout" and self.cancel_on_timeout:
            ended = {b["id"] for b in checked["batches"] if b["processing_status"] == "ended"}
            unfinished = [batch_id for batch_id in checked["batch_ids"] if batch_id not in ended]
            self.log.warning("Timeout reached; cancelling the unfinished batches %s.", unfinished)
            cancel_unfinished(self.hook, unfinished)
        elif checked["status"] == "timeout":
            self.log.warning(
                "Timeout reached; the batches keep running (cancel_on_timeout=False): cancel them "
                "or wait for them with BatchSensor."
            )
        raise_for_event(checked)
        if group is None or not group.get("rounds"):
            return self._finish(context, group_of(checked["batches"], group))
        if deadline is None and self.timeout is not None:
            started = CreateLedger.started_at(ledger_store(context))
            deadline = None if started is None else started + self.timeout
        return self._end_round(context, self.hook, group, checked["batches"], deadline)

    def _end_round(
        self,
        context: Context,
        hook: BatchHook,
        group: BatchGroup,
        batches: list[BatchSnapshot],
        deadline: float | None,
    ) -> BatchGroup:
        """The current round ended: start the next one if some requests are worth resending, else finish."""
        if not group.get("rounds"):
            return self._finish(context, group_of(batches, group))
        group = group_of(batches, group)
        done = len(group["rounds"])
        if done > self.resubmit_rounds:
            return self._finish(context, group)
        if any(b["cancel_initiated_at"] for b in batches):
            self.log.warning("Round %d was canceled; its requests are not resubmitted.", done)
            return self._finish(context, group)
        found = find_resubmittable(hook, batches, self.resubmit_error_types)
        if not found.custom_ids:
            self.log.info("Round %d left nothing to resubmit.", done)
            return self._finish(context, group)
        self.log.info(
            "Round %d: resubmitting %d request(s) (%d errored with %s, %d expired) as round %d of %d.",
            done,
            len(found.custom_ids),
            found.errored,
            ", ".join(self.resubmit_error_types),
            found.expired,
            done + 1,
            self.resubmit_rounds + 1,
        )
        batch_ids, request_counts = self._submit_round(context, hook, done + 1, found.custom_ids)
        group = next_round(group, batch_ids, request_counts, found)
        self._batch_ids = list(group["batch_ids"])
        context["ti"].xcom_push(key=XCOM_RETURN_KEY, value=group)
        return self._wait(context, hook, group, deadline)

    def on_kill(self) -> None:
        # Only the blocking path gets here; a deferred task is cancelled by the trigger's on_kill.
        if self.cancel_on_kill and self._batch_ids:
            self.log.warning("Task killed; cancelling batches %s (cancel_on_kill=True).", self._batch_ids)
            cancel_unfinished(self.hook, self._batch_ids)

    def _dry_run(self, hook: BatchHook) -> dict[str, Any]:
        tally = self.cost.tally()
        with contextlib.ExitStack() as stack:
            plan = self.cost.plan(hook, self._spool(stack, hook, tally=tally), tally)
        self.log.info("Dry run: nothing was sent; the plan is the return value.")
        return plan

    def _submit(self, context: Context, hook: BatchHook) -> tuple[BatchGroup, CreateLedger]:
        with contextlib.ExitStack() as stack:
            spooled = self._spool(stack, hook, check_budget=True)
            ledger, batch_ids = self._create_all(context, hook, spooled, round_number=1)
            group = new_group(
                batch_ids,
                [p.request_count for p in spooled],
                group_fingerprint([p.fingerprint for p in spooled]),
            )
            return group, ledger

    def _submit_round(
        self, context: Context, hook: BatchHook, round_number: int, custom_ids: set[str]
    ) -> tuple[list[str], list[int]]:
        """Create the batches of a follow-up round: the chosen requests, read again from the input."""
        with contextlib.ExitStack() as stack:
            spooled = self._spool(stack, hook, select=custom_ids.__contains__, check_budget=True)
            _, batch_ids = self._create_all(context, hook, spooled, round_number=round_number)
            return batch_ids, [p.request_count for p in spooled]

    def _create_all(
        self, context: Context, hook: BatchHook, spooled: list[SpooledBatch], *, round_number: int
    ) -> tuple[CreateLedger, list[str]]:
        ledger = CreateLedger.load(
            ledger_store(context),
            [(p.fingerprint, p.request_count) for p in spooled],
            where=f"task {self.task_id}" + (f" (round {round_number})" if round_number > 1 else ""),
            key=round_key(round_number),
        )
        return ledger, create_parts(hook, ledger, spooled, self.log)

    def _spool(
        self,
        stack: contextlib.ExitStack,
        hook: BatchHook,
        select: Callable[[str], bool] | None = None,
        *,
        tally: RequestTally | None = None,
        check_budget: bool = False,
    ) -> list[SpooledBatch]:
        """Validate and spool the input, writing only the ``select``-ed requests; files go with ``stack``.

        Requests without a model get ``default_model``, else the connection's ``model`` extra. With
        ``check_budget`` and ``max_cost_usd``, the plan of what was spooled must fit the budget; ``tally``
        collects what a plan needs.
        """
        source = describe_source(self.requests)
        if check_budget and self.cost.budget is not None:
            tally = self.cost.tally()
        try:
            spooled = spool_batches(
                iter_request_items(self.requests, self.requests_conn_id),
                max_requests=self.max_requests_per_batch,
                max_bytes=self.max_bytes_per_batch,
                default_model=self.default_model or hook.default_model,
                select=select,
                observe=tally,
            )
        except RequestValidationError as exc:
            raise BatchRequestsInvalidError(f"The requests from {source} are invalid. {exc}") from None
        for part in spooled:
            stack.callback(part.cleanup)
        self.log.info(
            "Validated %d requests from %s into %d batch(es): %s",
            sum(p.request_count for p in spooled),
            source,
            len(spooled),
            ", ".join(f"{p.request_count} requests / {p.nbytes} bytes" for p in spooled),
        )
        if check_budget and tally is not None:
            self.cost.check_budget(hook, spooled, tally)
        return spooled

    def _finish(self, context: Context, group: BatchGroup) -> BatchGroup:
        check_outcome(
            group["counts"],
            max_failure_ratio=self.max_failure_ratio,
            on_all_canceled=self.on_all_canceled,
            batch_ids=list(group["batch_ids"]),
        )
        CreateLedger.discard(ledger_store(context), rounds=1 + self.resubmit_rounds)
        if self.report_cost:
            group["cost"] = reported_cost(self.hook, list(group["batch_ids"]), self.cost.table)
        return group
