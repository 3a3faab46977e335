"""The reactive core of MiniAgents: promises and replayable streams over ``reactivex``.

This layer imports nothing from the layers above it, so it can be used on its own:
:class:`Promise` (a value produced once), :class:`StreamedPromise` (a replayable stream
of pieces resolving to a whole) and the sentinels in :mod:`miniagents.promising.sentinels`.
From below it, it imports only the root error (:mod:`miniagents.root_error`) and the
argument checks (:mod:`miniagents.arguments`). ``Frozen`` and ``FrozenDict`` (deeply
immutable values) live in :mod:`miniagents.frozen`, beside this package; this package
re-exports them (so does its former home, :mod:`miniagents.promising.frozen`), and its
``errors`` module their errors, for compatibility: the only imports from beside the layer.
The layers above, and extension authors, build on the replay core through
:mod:`miniagents.promising.lowlevel`.
"""

from miniagents.frozen.model import Frozen as Frozen
from miniagents.frozen.model import FrozenDict as FrozenDict
from miniagents.promising.errors import MiniAgentsError as MiniAgentsError
from miniagents.promising.limits import Overflow as Overflow
from miniagents.promising.promise import Promise as Promise
from miniagents.promising.sentinels import AWAIT as AWAIT
from miniagents.promising.sentinels import CLEAR as CLEAR
from miniagents.promising.sentinels import DEFAULT as DEFAULT
from miniagents.promising.sentinels import NO_VALUE as NO_VALUE
from miniagents.promising.sentinels import Sentinel as Sentinel
from miniagents.promising.streamed_promise import StreamedPromise as StreamedPromise
from miniagents.promising.streamed_promise import StreamIterator as StreamIterator

__all__ = [
    "AWAIT",
    "CLEAR",
    "DEFAULT",
    "NO_VALUE",
    "Frozen",
    "FrozenDict",
    "MiniAgentsError",
    "Overflow",
    "Promise",
    "Sentinel",
    "StreamIterator",
    "StreamedPromise",
]
