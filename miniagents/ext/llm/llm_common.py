"""The former home of what every LLM agent shares; these names now live elsewhere.

Kept so that old imports still work: :class:`LLMCall`, :class:`Finish` and
:class:`LLMProvider` are in :mod:`miniagents.ext.llm.provider`, :func:`prompt_of` in
:mod:`miniagents.ext.llm.prompt`, and LLM agents are made by
:func:`miniagents.ext.llm.llm_agent.make_llm_agent`.
"""

from miniagents.ext.llm.prompt import prompt_of as prompt_of
from miniagents.ext.llm.provider import Finish as Finish
from miniagents.ext.llm.provider import LLMCall as LLMCall
from miniagents.ext.llm.provider import LLMProvider as LLMProvider

__all__ = ["Finish", "LLMCall", "LLMProvider", "prompt_of"]
