"""The reactive core of MiniAgents: promises and replayable streams over ``reactivex``.

This layer imports nothing from the rest of the package, so it can be used on its own:
:class:`Promise` (a value produced once), :class:`StreamedPromise` (a replayable stream
of pieces resolving to a whole), :class:`Frozen` (deeply immutable pydantic models) and
the sentinels in :mod:`miniagents.promising.sentinels`. The layers above, and extension
authors, build on the replay core through :mod:`miniagents.promising.lowlevel`.
"""

from miniagents.promising.errors import MiniAgentsError as MiniAgentsError
from miniagents.promising.frozen import Frozen as Frozen
from miniagents.promising.frozen import FrozenDict as FrozenDict
from miniagents.promising.promise import Promise as Promise
from miniagents.promising.sentinels import AWAIT as AWAIT
from miniagents.promising.sentinels import CLEAR as CLEAR
from miniagents.promising.sentinels import DEFAULT as DEFAULT
from miniagents.promising.sentinels import NO_VALUE as NO_VALUE
from miniagents.promising.sentinels import Sentinel as Sentinel
from miniagents.promising.streamed_promise import StreamedPromise as StreamedPromise

__all__ = [
    "AWAIT",
    "CLEAR",
    "DEFAULT",
    "NO_VALUE",
    "Frozen",
    "FrozenDict",
    "MiniAgentsError",
    "Promise",
    "Sentinel",
    "StreamedPromise",
]
