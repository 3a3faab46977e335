"""Batch mode: a pipeline's calls of models through the providers' batch APIs, at half price.

::

    from miniagents.ext.llm.batch import BatchMode

    async for result in pipeline(agent, items, max_concurrency=1_000, batch=BatchMode()):
        ...

``BatchMode`` (``mode``) is given to ``pipeline(..., batch=...)`` or ``map_agent(...,
batch=...)``; each call of a model that the items make is queued into its provider's batch
API and gets its reply when the batch returns it (``_run``). The batches of a run are
noted in a journal (``journal``), so that a process started again after a crash
re-attaches to them. OpenAI's Batch API (``openai_batches``: Chat Completions and the
Responses API), Anthropic's Message Batches (``anthropic_batches``) and Gemini's Batch API
(``gemini_batches``: the Developer API's) are registered; another provider's is a
``BatchAPI`` (``api``) given to :func:`register_batch_api`.
"""

from miniagents.ext.llm.batch._run import BatchProgress as BatchProgress
from miniagents.ext.llm.batch._run import BatchRun as BatchRun
from miniagents.ext.llm.batch.anthropic_batches import AnthropicBatchAPI as AnthropicBatchAPI
from miniagents.ext.llm.batch.api import BatchAPI as BatchAPI
from miniagents.ext.llm.batch.api import BatchLimits as BatchLimits
from miniagents.ext.llm.batch.api import BatchRequest as BatchRequest
from miniagents.ext.llm.batch.api import BatchState as BatchState
from miniagents.ext.llm.batch.api import OutcomeReason as OutcomeReason
from miniagents.ext.llm.batch.api import RequestOutcome as RequestOutcome
from miniagents.ext.llm.batch.api import batch_api_for as batch_api_for
from miniagents.ext.llm.batch.api import register_batch_api as register_batch_api
from miniagents.ext.llm.batch.gemini_batches import GeminiBatchAPI as GeminiBatchAPI
from miniagents.ext.llm.batch.journal import FileJournal as FileJournal
from miniagents.ext.llm.batch.journal import JournalHold as JournalHold
from miniagents.ext.llm.batch.mode import DEFAULT_JOURNAL_FOLDER as DEFAULT_JOURNAL_FOLDER
from miniagents.ext.llm.batch.mode import BatchMode as BatchMode
from miniagents.ext.llm.batch.openai_batches import OpenAIBatchAPI as OpenAIBatchAPI

__all__ = [
    "DEFAULT_JOURNAL_FOLDER",
    "AnthropicBatchAPI",
    "BatchAPI",
    "BatchLimits",
    "BatchMode",
    "BatchProgress",
    "BatchRequest",
    "BatchRun",
    "BatchState",
    "FileJournal",
    "GeminiBatchAPI",
    "JournalHold",
    "OpenAIBatchAPI",
    "OutcomeReason",
    "RequestOutcome",
    "batch_api_for",
    "register_batch_api",
]

register_batch_api(GeminiBatchAPI())  # (looked at last: the others' calls find theirs as before)
register_batch_api(AnthropicBatchAPI())
register_batch_api(OpenAIBatchAPI())
