"""What a job's LLM calls spent, metered as they run, per model, for the encoders.

Each job has a :class:`JobUsage`: a meter (a ``Budget`` without limits, kept per model)
that its reply is charged to as the run manager starts it (``charged_to``), so it counts
every call of a model the reply causes: its LLM agents' tool loops, the agents they call
as tools, retries. A protocol's encoder marks where each of the job's runs starts
(:meth:`JobUsage.run_started`, a resumed run too) and reports, where its protocol puts
usage, what the job spent in its current run (:meth:`JobUsage.run_usage`) or since it
started (:meth:`JobUsage.job_usage`). (An LLM answer's own ``usage`` says its whole tool
loop's, before a pause too: summing the answers' would count those calls twice across the
runs of one turn, and miss the agents called as tools.)

A durable agent's job (``from_texts``) is the exception: replayed after a restart, its calls
recorded before are not made again, so no meter counts them, while its run must say again
what it said the first time. It sums what the texts of its reply said instead, as each ends
(:meth:`JobUsage.note`): the agents called as tools are not in it, and a run resumed after a
pause reports the calls its answer's tool loop made before the pause too.
"""

from __future__ import annotations

from miniagents.ext.llm.messages import TokenUsage, reply_metadata
from miniagents.ext.llm.usage import Budget, UsageTotals
from miniagents.messages.message import Message

__all__ = ["JobUsage", "as_token_usage"]


class JobUsage:
    """The meter of one job's reply, and where its current run started on it."""

    __slots__ = ("_job_said", "_run_said", "_run_start", "from_texts", "meter")

    def __init__(self, *, from_texts: bool = False) -> None:
        self.meter = Budget(by_model=True)
        """What the job's reply is charged to (see the module docstring)."""
        self.from_texts = from_texts
        """Whether it sums what the reply's texts say instead (a durable agent's job)."""
        self._run_start: dict[str, UsageTotals] = {}
        self._run_said: dict[str, TokenUsage] = {}  # (from_texts: the current run's texts')
        self._job_said: list[TokenUsage] = []  # (from_texts: every text's of the job)

    def run_started(self) -> None:
        """Note that a run of the job starts here: its usage counts from now."""
        self._run_start = self.meter.usage_by_model
        self._run_said = {}

    def note(self, message: Message | None) -> None:
        """Note the usage a text of the reply (ended) says, if any; only ``from_texts``."""
        said = _usage_said(message) if self.from_texts else None
        if said is not None:
            usage, model = said
            earlier = self._run_said.get(model)
            summed_usage = usage if earlier is None else TokenUsage.summed((earlier, usage))
            self._run_said[model] = summed_usage
            self._job_said.append(usage)

    def run_usage(self) -> dict[str, TokenUsage]:
        """What the job spent in its current run, per model (the models it called in it).

        Each as a ``TokenUsage`` (see :func:`as_token_usage`).
        """
        if self.from_texts:
            return dict(self._run_said)
        now = self.meter.usage_by_model
        start = self._run_start
        spent = {
            model: usage.since(start[model]) if model in start else usage
            for model, usage in now.items()
        }
        return {model: as_token_usage(usage) for model, usage in spent.items() if usage.requests}

    def job_usage(self) -> TokenUsage | None:
        """What the job spent since it started, all models summed (``None``: it called none).

        As a ``TokenUsage`` (see :func:`as_token_usage`).
        """
        if self.from_texts:
            return TokenUsage.summed(self._job_said) if self._job_said else None
        total = UsageTotals.summed(self.meter.usage_by_model.values())
        return as_token_usage(total) if total.requests else None


def as_token_usage(usage: UsageTotals) -> TokenUsage:
    """``usage`` as a ``TokenUsage``: the counts of no token left out, its cost if any is known.

    (A cost is known when some of its calls had a price; while others had none, it is the
    priced calls' and the estimate of the others': a lower bound.)

    A cached, cache-written or reasoning count of 0 is said as not known (``None``): the
    meter adds up what its calls reported, a count that was not reported as 0, so it cannot
    tell a provider that reported 0 of them (as OpenAI's does of its cached tokens) from one
    that says nothing of them. An answer's own ``usage`` (and a durable agent's job, which
    sums those: ``from_texts``) keeps the difference.
    """
    return TokenUsage(
        input_tokens=usage.input_tokens or None,  # (0: no call said its prompt's, cancelled)
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens or None,
        cache_write_tokens=usage.cache_write_tokens or None,
        reasoning_tokens=usage.reasoning_tokens or None,
        cost_usd=usage.cost_usd if usage.unpriced_requests < usage.requests else None,
    )


def _usage_said(message: Message | None) -> tuple[TokenUsage, str] | None:
    """The usage ``message`` says, with its model (``""``: it names none); ``None``: none."""
    usage, model, _ = reply_metadata(message)
    return None if usage is None else (usage, model or "")
