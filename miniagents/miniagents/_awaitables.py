"""Functions that give awaitables: which surely do not, as far as can be told before a call.

What an agent function and a context's message handler are typed as, a callable that
returns an ``Awaitable``, is what the runtime takes: an ``async def`` function, an object
whose ``__call__`` is ``async def``, a ``functools.partial`` of either, or a plain function
that returns an awaitable (a lambda calling an async function). The types cannot tell them
apart, so the runtime does not either; it refuses at once only a plain function whose
return annotation says ``None``, and checks what any other one returns when it is called.

What such a callable is called and described by is here too (:func:`called_function`,
:func:`docstring_of`): the one rule for an agent's description and a tool's.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable

__all__ = ["called_function", "docstring_of", "surely_not_async"]


def called_function(func: Callable[..., object]) -> Callable[..., object]:
    """What a call of ``func`` calls: the function of a ``functools.partial`` (of a partial...).

    It names and describes an agent made of a partial (not ``functools.partial`` itself),
    and a tool function so (re-exported by :mod:`miniagents.miniagents.lowlevel`).
    """
    while isinstance(func, functools.partial):
        func = func.func
    return func


def docstring_of(func: Callable[..., object]) -> str | None:
    """The docstring that describes ``func`` (cleaned by ``inspect.cleandoc``), if any.

    The one rule for an agent's ``description`` and a tool's: a function (or method)
    is described by its own docstring, a ``functools.partial`` (of a partial...) by its
    function's, a class by its own, and a callable object by the docstring set on it (as
    ``functools.update_wrapper`` sets one), else by its ``__call__``'s own docstring, what
    a call of it does and where its ``Args:`` are, else by its class's own (the docstring
    of what it is). A class's docstring is never taken from a base, nor a method's (a
    ``__call__``'s, a bound method's) from the method it overrides: a subclass without one
    would be described by text written for another class. The docstring that ``@dataclass``
    writes into a class that has none (its signature, ``"Point(x: int, y: int)"``) is no
    description either.
    """
    called = called_function(func)
    if inspect.isroutine(called):
        # (a bound method's __doc__ is its function's own; inspect.getdoc would take the
        # overridden base method's when it has none)
        return _cleaned(called.__doc__)
    if inspect.isclass(called):
        return _own_docstring(called)
    # (a docstring set on the object itself, as ``functools.update_wrapper`` does, is its own)
    own = _cleaned(getattr(called, "__dict__", {}).get("__doc__"))
    if own:
        return own
    call = type(called).__call__
    said = _cleaned(call.__doc__) if inspect.isfunction(call) else None
    return said or _own_docstring(type(called))


def _own_docstring(cls: type) -> str | None:
    """The docstring written in ``cls``'s own body (none of its bases'), cleaned.

    A dataclass's docstring that ``@dataclass`` wrote itself, for want of one, is none.
    """
    doc = vars(cls).get("__doc__")
    if dataclasses.is_dataclass(cls) and doc == _dataclass_written_doc(cls):
        return None
    return _cleaned(doc)


def _dataclass_written_doc(cls: type) -> str:
    """The docstring ``@dataclass`` writes into a class without one: its name and signature."""
    try:
        signature = str(inspect.signature(cls)).replace(" -> None", "")
    except (TypeError, ValueError):  # (as dataclasses does: the name alone)
        signature = ""
    return cls.__name__ + signature


def _cleaned(doc: object) -> str | None:
    """``doc`` cleaned by ``inspect.cleandoc`` if it is a str, else ``None``."""
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


def surely_not_async(func: Callable[..., object]) -> bool:
    """Whether calling ``func`` surely gives no awaitable, as far as can be told now.

    It does if it is not async (an ``async def`` function or method, an object whose class
    defines ``async def __call__``, or a ``functools.partial`` of either) and its return
    annotation says ``None``. A plain function that returns an awaitable (a lambda calling
    an async function, a function annotated ``-> Awaitable[None]``) gives one, as its type
    says: what it returns is checked at each call.
    """
    target = called_function(func)
    if inspect.iscoroutinefunction(target):
        return False
    # a call goes to the class's __call__ (an instance attribute of that name is not called)
    if inspect.iscoroutinefunction(type(target).__call__):
        return False
    try:
        returns = inspect.signature(func).return_annotation
    except (TypeError, ValueError):  # (no signature to read: told at the first call)
        return False
    return returns is None or returns == "None"
