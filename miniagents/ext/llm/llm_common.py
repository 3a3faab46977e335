"""The former home of what every LLM agent shares; deprecated, it warns when imported.

Import :class:`LLMCall`, :class:`Finish` and :class:`LLMProvider` from
:mod:`miniagents.ext.llm` (they are defined in :mod:`miniagents.ext.llm.provider`), and
:func:`prompt_of` from :mod:`miniagents.ext.llm.prompt`. This module goes in the first release after
:data:`miniagents.reexports.FORMER_HOMES_GO_AFTER`.
"""

from miniagents.ext.llm.prompt import prompt_of as prompt_of
from miniagents.ext.llm.provider import Finish as Finish
from miniagents.ext.llm.provider import LLMCall as LLMCall
from miniagents.ext.llm.provider import LLMProvider as LLMProvider
from miniagents.reexports import warn_former_home

__all__ = ["Finish", "LLMCall", "LLMProvider", "prompt_of"]

warn_former_home(__name__, "miniagents.ext.llm (and prompt_of from miniagents.ext.llm.prompt)")
