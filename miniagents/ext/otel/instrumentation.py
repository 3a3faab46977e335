"""``instrument()``: spans and metrics of the agents, the models and the tools, for OpenTelemetry.

Once on, these spans are made (their names and attributes follow the OpenTelemetry GenAI
semantic conventions)::

    invoke_agent RESEARCHER                    an interaction (INTERNAL)
    ├── chat gpt-4o-mini                       a call of the model (CLIENT)
    │   └── POST                               an instrumented HTTP client's, if any
    ├── execute_tool search                    a tool call (INTERNAL)
    │   └── invoke_agent SEARCHER              an agent called as a tool
    │       └── chat gpt-4o-mini
    └── chat gpt-4o-mini

- **invoke_agent {alias}**: ``gen_ai.operation.name`` ``invoke_agent``,
  ``gen_ai.agent.name``, ``gen_ai.agent.description``; the interaction of an agent that
  calls a model itself (an LLM agent, or a durable agent that runs one) also has the
  ``gen_ai.provider.name`` and ``gen_ai.request.model`` of its first call (set when that
  call starts, not when the span does) and ``gen_ai.usage.input_tokens`` /
  ``output_tokens``, the sums of its own calls (not of the agents it asks). An agent
  that calls no model itself (your own ``@miniagent``, a fallback agent) has no provider
  to name: its span has no ``gen_ai.provider.name``, which the conventions require of an
  ``invoke_agent`` span;
- **chat {model}**: ``gen_ai.operation.name`` ``chat``, ``gen_ai.provider.name``
  (``openai``, ``anthropic``, ``gcp.gemini`` or ``gcp.vertex_ai`` as the Gemini client
  calls, ``aws.bedrock``, a compatible server's own name; a provider of your own: its
  ``provider_name_for(options)`` method, else its ``provider_name`` attribute, else its
  class name without ``Provider``, lower-cased), ``gen_ai.request.model``, the request's
  ``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``stop_sequences`` (a list, even
  for one ``stop`` text), penalties, ``gen_ai.request.stream`` (``true``, set only when
  the request streams), ``gen_ai.response.id`` (the API's id of the reply),
  ``gen_ai.response.model``, ``gen_ai.response.finish_reasons``
  (the API's own words, e.g. ``end_turn``), ``gen_ai.usage.input_tokens`` (the cached
  ones included, for Anthropic too), ``gen_ai.usage.output_tokens`` (the reasoning ones
  included), ``gen_ai.usage.cache_read.input_tokens``,
  ``gen_ai.usage.cache_creation.input_tokens`` and
  ``gen_ai.usage.reasoning.output_tokens`` (each when the API reports it), and, for a
  streaming request, ``gen_ai.response.time_to_first_chunk`` (seconds; also a
  ``gen_ai.first_chunk`` event, MiniAgents' own); MiniAgents' own
  ``miniagents.llm.cached`` (``true`` for a reply a call cache replayed: no request was
  made, ``miniagents.ext.llm.cache``) and ``miniagents.llm.batch_id`` (the provider's
  batch a reply came in, ``miniagents.ext.llm.batch``);
- **execute_tool {name}**: ``gen_ai.operation.name`` ``execute_tool``,
  ``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``gen_ai.tool.type``,
  ``gen_ai.tool.description``;
- **span kinds**: ``invoke_agent`` and ``execute_tool`` are INTERNAL; ``chat`` is CLIENT,
  a request to a remote service, as the conventions recommend, except for a model that
  runs in this process (the offline model, the testing kit's scripted models, a provider
  of yours with ``in_process = True``): INTERNAL, as the conventions allow for a model of
  the same process, since no request leaves it. A call that a budget refuses is never
  sent, so it has no ``chat`` span (a CLIENT span would say a request was made) and
  records no metric: the ``BudgetExceededError`` fails the agent's reply, so it is the
  ``error.type`` of its ``invoke_agent`` span;
- on a failure, ``error.type`` (the error's class name, e.g. ``LLMRateLimitError``) and an
  error status without a description (the error's message is never recorded, and the
  conventions advise against repeating ``error.type`` there); a cancelled stream ends its
  span with ``error.type`` ``StreamCancelledError`` (a call's: ``CancelledError``) and the
  status description ``cancelled``. An error that is handled (a fallback agent that
  answers with its next agent) fails the span of the call and of the agent that failed,
  not the fallback agent's.

**Nesting.** A span's parent is the span current where its work was started: a
sub-agent's ``invoke_agent`` is a child of the interaction that inquired it (started at
once or lazily, alone or in parallel), a tool's ``execute_tool`` a child of the LLM
agent's interaction, an agent called as a tool a child of its ``execute_tool``; the
interaction of a ``ray_agent`` continues its caller's trace in the worker (the trace
context travels with the call; the worker process exports its spans if it is
instrumented too, e.g. from Ray's ``worker_process_setup_hook``), and so do the items of a
``ray_pipeline`` (children of the span current where its iteration starts). Code of yours
that makes spans around an inquiry makes them the parents. A call's ``chat`` span is
current while the provider's code runs (the SDK's request and its reads, step by step), so
the spans that an instrumented HTTP client (e.g. ``opentelemetry-instrumentation-httpx``)
or the SDK makes there are its children; it is not current in between, where the agent
handles what came.

**Turning it on midway.** An interaction is traced if instrumentation is on when it starts:
one inquired before :func:`instrument` with a lazy start (``start_asap=False``), and started
after, gets its span (its parent is the span current where it was inquired, if any); one
that started before stays untraced, and so do its messages' ends.

**When spans end.** When their stream ends: an interaction's span when its replies have
ended, to the last token of the last message (not when the agent function returns); a
call's span after the model's last event; a tool's span when its result has ended. A span
that ends with an error (most often a cancellation) while spans of ours started under it
are still open (its model calls, its tool calls, the agents it asked, whose cancellation
is still on its way to their tasks) ends when the last of them has: a cancelled tree ends
from its leaves up, and no child ends after its parent. It waits 5 seconds at most: a child
that nothing cancels (an agent it started and left running, which never ends) would keep
it unexported for good, so it ends then, with ``miniagents.span.unfinished_children`` (how
many were still open), and each of those children, when it ends, has
``miniagents.span.ended_after_parent`` (``true``). A span that ends well ends at once: an
agent it started and left running may end after it.

**Content.** Prompts, answers, system instructions, tool arguments and tool results are
recorded (``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions``, ``gen_ai.tool.call.arguments``,
``gen_ai.tool.call.result``, as JSON; a tool call's arguments as an object in the messages)
only with ``capture_content=True``, whole (each call's ``gen_ai.input.messages`` holds its
whole conversation): the SDK's ``SpanLimits(max_span_attribute_length=...)`` (or
``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``) bounds what a span keeps. The output message of a call
that ended well has the
conventions' required ``finish_reason``: the API's own (``end_turn``, ``tool_calls``, ...),
else, for a reply whose API named none (a compatible server's ``null``), the conventions'
``tool_call`` when the model called tools, ``stop`` otherwise (``gen_ai.response.finish_reasons``
keeps the API's words only, and is left out then); a call that fails (or is cancelled)
records no output message, its error is the span's. Errors are
recorded by their class only, never their messages (a provider's message may quote an API
key), and the request's other options (``extra_options``, headers, clients) never.

**Metrics.** ``gen_ai.client.token.usage`` (a histogram of tokens per call, by
``gen_ai.token.type`` ``input`` / ``output``), ``gen_ai.client.operation.duration``
(seconds per call of a model, with ``error.type`` on failures) and
``gen_ai.client.operation.time_to_first_chunk`` (seconds to the first chunk of a streaming
call), with the conventions' bucket boundaries. ``gen_ai.client.operation.time_per_output_chunk``
is not recorded: it would cost a record per token.

**Durable agents** (``miniagents.ext.dbos``). ``durable(agent)`` runs ``agent`` in a DBOS
workflow under the same alias: the interaction has one ``invoke_agent`` span (the one of
``agent`` that it runs right under it gets none), its calls under it. A model call that a
recovered run replays from its record sends no request: it has no ``chat`` span and records
no metric (as it is charged to no budget); the calls made after the recovery do.

**Conformance.** The names, kinds, attributes and metrics are those of the GenAI semantic
conventions as released in OpenTelemetry semantic conventions v1.41 (development status;
they have since moved to the semantic-conventions-genai repository). Left out on purpose:
``server.address`` and ``server.port`` (the SDK client resolves the endpoint, out of the
hook's sight), ``gen_ai.conversation.id`` (an interaction has no conversation id),
``gen_ai.tool.definitions``, ``openai.api.type`` and the per-token
``gen_ai.client.operation.time_per_output_chunk``; the ``gen_ai.first_chunk`` event is
MiniAgents' own. Content is captured only with ``capture_content=True``: the
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` variable of OpenTelemetry's own
instrumentations is not read.

**Faults.** Telemetry never breaks a reply: an exporter, a span processor or a tracer that
raises is logged once (a warning on the ``miniagents`` logger) and the agents go on.

**Cost.** Off, an interaction, a model call and a tool call each pay one function call that
finds no observer, and nothing per token. On, see ``tests/benchmarks/README.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from miniagents.arguments import check_flag
from miniagents.ext.errors import MissingExtraError
from miniagents.root_error import ArgumentError

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["instrument", "uninstrument"]

_HINT = 'Tracing with OpenTelemetry needs its API: pip install "miniagents[otel]".'


def instrument(
    tracer_provider: TracerProvider | None = None,
    *,
    capture_content: bool = False,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Make spans and metrics of every interaction, model call and tool call from now on.

    Calling it again replaces the settings (the interactions already running keep theirs).

    Args:
        tracer_provider: Where the spans go (default: OpenTelemetry's global one, as set
            with ``opentelemetry.trace.set_tracer_provider``).
        capture_content: Also record the prompts, answers and tool arguments and results
            (they may hold personal data); off by default.
        meter_provider: Where the metrics go (default: the global one).

    Raises:
        MissingExtraError: if ``opentelemetry-api`` is not installed (an ``ImportError``).
        ArgumentError: for a provider that is not one (no ``get_tracer``/``get_meter``), or
            a ``capture_content`` that is not a bool (a ``ValueError``).
    """
    check_flag(capture_content, "capture_content", owner="instrument()")
    for name, provider, method, example in (
        ("tracer_provider", tracer_provider, "get_tracer", "opentelemetry.sdk.trace"),
        ("meter_provider", meter_provider, "get_meter", "opentelemetry.sdk.metrics"),
    ):
        if provider is not None and not callable(getattr(provider, method, None)):
            kind = name.title().replace("_", "")
            raise ArgumentError(
                f"instrument() needs {name} to be an OpenTelemetry {kind} (e.g. "
                f"{example}.{kind}()), or None for the global one; got {provider!r}."
            )
    try:
        from miniagents.ext.otel._tracing import Telemetry
    except ImportError as error:
        raise MissingExtraError(f"{_HINT} ({error})") from error
    Telemetry(tracer_provider, meter_provider, capture_content=capture_content).install()


def uninstrument() -> None:
    """Stop making spans and metrics (interactions already running end theirs); idempotent."""
    try:
        from miniagents.ext.otel._tracing import Telemetry
    except ImportError:
        return  # never instrumented: nothing to undo
    Telemetry.uninstall()
