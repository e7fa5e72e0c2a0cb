"""Plays a :class:`~devstack.demo.plan.Plan` against the real QMS and CRM databases.

Each step is one autocommitted statement, as the legacy applications write: the
CDC sees one transaction per change, with the database's own ``now()`` as the
quote's ``updated_at`` (the deadline is counted from it), so nothing here
pretends to know the time better than the source. The driver is stepped from
the demo's main loop (:meth:`Driver.due`), never a thread of its own, so a
component dying stops the workload at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Set

import psycopg

from devstack.demo.plan import Plan, Step
from quoteflow.errors import QuoteflowError
from quoteflow.settings import Settings

#: A step waiting for its quote's offer gives up waiting after this long (the offer
#: did not come: the step runs anyway, and the summary shows the quote's real outcome).
AFTER_OFFER_LIMIT_S = 90.0


class WorkloadError(QuoteflowError):
    """The workload could not write to the QMS or CRM database."""


class Driver:
    """Runs due steps in order; ``offered(quote_id)`` says whether a quote's offer arrived."""

    def __init__(self, settings: Settings, plan: Plan, offered: Callable[[int], bool], *,
                 done: Set[int] = frozenset()) -> None:  # fmt: skip
        """``done``: indices of the plan's steps already written (a resumed run's)."""
        self._plan = plan
        self._offered = offered
        pg = settings.postgres
        try:
            self._qms = psycopg.connect(pg.conninfo(pg.qms_database), autocommit=True)
            self._crm = psycopg.connect(pg.conninfo(pg.crm_database), autocommit=True)
        except psycopg.Error as exc:
            raise WorkloadError(f"cannot connect to the QMS/CRM databases: {exc}") from None
        self._quotes = {q.quote_id: q for q in plan.quotes}
        self._pending: list[tuple[int, Step]] = [
            (i, s) for i, s in enumerate(plan.steps) if i not in done]
        self._started: float | None = None
        self.written: set[int] = set(done)

    @property
    def finished(self) -> bool:
        return not self._pending

    @property
    def total(self) -> int:
        return len(self._plan.steps)

    @property
    def done(self) -> int:
        return len(self.written)

    @property
    def elapsed_s(self) -> float:
        """The workload's clock: where a resumed run carries on from."""
        return 0.0 if self._started is None else time.monotonic() - self._started

    def start(self, at_s: float = 0.0) -> None:
        """Start the workload's clock at ``at_s`` (a resumed run: where it stopped)."""
        self._started = time.monotonic() - at_s

    def due(self) -> int:
        """Run every step whose time has come; how many ran."""
        if self._started is None:
            return 0
        elapsed = time.monotonic() - self._started
        ran = 0
        for index, step in list(self._pending):
            if step.at_s > elapsed:
                break
            if step.after_offer and step.quote_id is not None and not self._offered(
                    step.quote_id) and elapsed < step.at_s + AFTER_OFFER_LIMIT_S:  # fmt: skip
                continue  # waits for its offer; later steps are not held up by it
            self._run(step)
            self._pending.remove((index, step))
            self.written.add(index)
            ran += 1
        return ran

    def _run(self, step: Step) -> None:
        try:
            self._write(step)
        except psycopg.Error as exc:
            raise WorkloadError(f"workload step {step.kind} failed: {exc}") from None

    def _write(self, step: Step) -> None:
        if step.kind == "customer":
            assert step.customer_id is not None
            c = self._plan.customers_by_id[step.customer_id]
            self._crm.execute(
                "INSERT INTO public.customers (customer_id, first_name, last_name, email,"
                " marketing_consent, consent_updated_at, timezone, segment)"
                " VALUES (%s, %s, %s, %s, %s, now(), %s, %s)"
                # A resumed run may repeat the step it was interrupted in.
                " ON CONFLICT (customer_id) DO NOTHING",
                (c.customer_id, c.first_name, c.last_name, c.email, c.consent, c.timezone,
                 c.segment),
            )  # fmt: skip
        elif step.kind == "withdraw_consent":
            self._crm.execute(
                "UPDATE public.customers SET marketing_consent = false,"
                " consent_updated_at = now() WHERE customer_id = %s", (step.customer_id,),
            )  # fmt: skip
        elif step.kind == "quote":
            assert step.quote_id is not None
            q = self._quotes[step.quote_id]
            self._qms.execute(
                "INSERT INTO public.quotes (quote_id, quote_ref, customer_id, product_code,"
                " channel, premium, currency, status, valid_until)"
                " VALUES (%s, %s, %s, %s, %s, %s, 'GBP', %s, current_date + 30)"
                " ON CONFLICT (quote_id) DO NOTHING",
                (q.quote_id, q.quote_ref, q.customer_id, q.product_code, q.channel, q.premium,
                 step.status),
            )  # fmt: skip
        elif step.kind == "status":
            self._qms.execute("UPDATE public.quotes SET status = %s WHERE quote_id = %s",
                              (step.status, step.quote_id))  # fmt: skip
        elif step.kind == "premium":
            self._qms.execute("UPDATE public.quotes SET premium = %s WHERE quote_id = %s",
                              (step.premium, step.quote_id))  # fmt: skip
        elif step.kind == "delete":
            self._qms.execute("DELETE FROM public.quotes WHERE quote_id = %s", (step.quote_id,))
        else:  # pragma: no cover - StepKind is a closed Literal
            raise AssertionError(step.kind)

    def close(self) -> None:
        self._qms.close()
        self._crm.close()
