"""The checks of the arguments users give: one function for each kind, one error.

Each check returns the value (as its type: ``int``, ``float``, ``str``, ``bool``) or raises
:class:`~miniagents.root_error.ArgumentError` (a ``ValueError``), or the subclass of it the
caller names (``error=``: a layer's error that existed before, such as ``StreamLimitError``,
so that code catching it keeps working). The message is a full sentence: who takes the
argument (``owner``), its name, what it must be, what it was, and how to give it (``fix``)::

    aevaluate() needs max_concurrency to be a whole number of at least 1; got 0.
    Pass e.g. max_concurrency=4.

A ``bool`` is never taken for a number, and NaN is never a number of seconds or an amount.
A check that allows ``None`` is the caller's (``if value is not None: check_...``). A rule
that no check says (a str or None, a mapping of settings) is refused with the same sentence
by :func:`refused_argument`, which makes the error for the caller to raise. A sentence that
names the class of what was given puts its article before it with :func:`a_class` ("a str",
"an OfflineMessage"), in any layer.
"""

from __future__ import annotations

import inspect
import math
import os
from typing import TypeVar

from miniagents.root_error import ArgumentError

__all__ = [
    "a_class",
    "check_count",
    "check_flag",
    "check_number",
    "check_path",
    "check_seconds",
    "check_text",
    "coroutine_refusal",
    "refused_argument",
]

_Refusal = TypeVar("_Refusal", bound=ArgumentError)


def check_count(
    value: object,
    name: str,
    *,
    least: int = 1,
    owner: str = "",
    fix: str = "",
    error: type[ArgumentError] = ArgumentError,
) -> int:
    """``value`` if it is a whole number (an ``int``) of at least ``least``.

    Raises:
        ArgumentError: (or ``error``) for anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise refused_argument(
            value, name, f"a whole number of at least {least}", owner=owner, fix=fix, error=error
        )
    return value


def check_seconds(
    value: object,
    name: str,
    *,
    zero: bool = False,
    forever: bool = False,
    owner: str = "",
    fix: str = "",
    error: type[ArgumentError] = ArgumentError,
) -> float:
    """``value`` as a ``float`` if it is a number of seconds, above 0 and finite.

    ``zero``: 0 is taken too; ``forever``: ``inf`` is taken too.

    Raises:
        ArgumentError: (or ``error``) for anything else (NaN too).
    """
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (value >= 0 if zero else value > 0)  # (NaN is neither)
        and (forever or value < math.inf)
    ):
        return float(value)
    raise refused_argument(value, name, _SECONDS[zero, forever], owner=owner, fix=fix, error=error)


_SECONDS = {
    (False, False): "a positive, finite number of seconds",
    (True, False): "a finite number of seconds of at least 0",
    (False, True): "a positive number of seconds",
    (True, True): "a number of seconds of at least 0",
}
"""What a number of seconds must be, by whether 0 and ``inf`` are taken."""


def check_number(
    value: object,
    name: str,
    *,
    least: float = 0,
    most: float = math.inf,
    below_most: bool = False,
    finite: bool = False,
    unit: str = "",
    owner: str = "",
    fix: str = "",
    error: type[ArgumentError] = ArgumentError,
) -> float:
    """``value`` as a ``float`` if it is a number from ``least`` (0) to ``most`` (``inf``).

    ``unit``: what it counts (``"US dollars"``), said in the message; a number up to 1 is a
    ratio, a threshold: ``check_number(value, "threshold", most=1)``. ``below_most``:
    ``most`` itself is refused (a range up to, but not including, ``most``). ``finite``:
    ``inf`` is refused too (where it is no limit, e.g. a budget, it is taken).

    Raises:
        ArgumentError: (or ``error``) for anything else (NaN too).
    """
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and least <= value <= most
        and not (below_most and value == most)
        and not (finite and value == math.inf)
    ):
        return float(value)  # (NaN is not)
    number = "a finite number" if finite and most == math.inf else "a number"
    kind = f"{number} of {unit}" if unit else number
    top = f"up to but not including {most:g}" if below_most else f"to {most:g}"
    rule = f"{kind} of at least {least:g}" if most == math.inf else f"{kind} from {least:g} {top}"
    raise refused_argument(value, name, rule, owner=owner, fix=fix, error=error)


def check_text(
    value: object,
    name: str,
    *,
    most: int | None = None,
    owner: str = "",
    fix: str = "",
    error: type[ArgumentError] = ArgumentError,
) -> str:
    """``value`` if it is a ``str`` with more than spaces in it.

    ``most``: its most characters (``None``: no limit).

    Raises:
        ArgumentError: (or ``error``) for anything else.
    """
    if not isinstance(value, str) or not value.strip() or (most is not None and len(value) > most):
        rule = "a non-empty str" + (f" of at most {most} characters" if most is not None else "")
        raise refused_argument(value, name, rule, owner=owner, fix=fix, error=error)
    return value


def check_path(
    value: object, name: str, *, owner: str, fix: str, error: type[ArgumentError] = ArgumentError
) -> str | os.PathLike[str]:
    """``value`` if it is a file's path: a ``str`` or an ``os.PathLike`` (a ``Path``).

    A path names no file by default, so the message always says who takes it (``owner``)
    and how to give it (``fix``, e.g. ``'Pass e.g. ChatHistoryMD("CHAT.md").'``).

    Raises:
        ArgumentError: (or ``error``) for anything else (``None``, a number, an open file,
            and an empty or blank str, which ``Path`` would take for the current folder).
    """
    if not isinstance(value, (str, os.PathLike)):
        rule = "a path (a str or a PathLike)"
        raise refused_argument(value, name, rule, owner=owner, fix=fix, error=error)
    if isinstance(value, str) and not value.strip():
        rule = "the path of a file, not an empty str"
        raise refused_argument(value, name, rule, owner=owner, fix=fix, error=error)
    return value


def check_flag(
    value: object,
    name: str,
    *,
    owner: str = "",
    fix: str = "",
    error: type[ArgumentError] = ArgumentError,
) -> bool:
    """``value`` if it is ``True`` or ``False``.

    Raises:
        ArgumentError: (or ``error``) for anything else (``1``, ``"yes"``, ``None``).
    """
    if not isinstance(value, bool):
        raise refused_argument(value, name, "True or False", owner=owner, fix=fix, error=error)
    return value


def coroutine_refusal(given: object, caller: str) -> str | None:
    """The sentence refusing ``given`` if it is no coroutine (``caller(main)``), else ``None``."""
    if inspect.iscoroutine(given):
        return None
    name = getattr(given, "__name__", "main")
    return (
        f"{caller}() takes a coroutine, not {given!r:.60}: call the async function, "
        f"{caller}({name}()), with the parentheses."
    )


def refused_argument(
    value: object,
    name: str,
    rule: str,
    *,
    owner: str = "",
    fix: str = "",
    error: type[_Refusal],
) -> _Refusal:
    """The ``error`` refusing ``value`` of the argument ``name``, which must be ``rule``.

    The checks' sentence, for a rule of the caller's own: ``refused_argument(5, "voice",
    "a str", owner="The agent voice", error=LLMConfigurationError)`` is the
    ``LLMConfigurationError`` "The agent voice needs voice to be a str; got 5.", its
    ``parameter`` ``"voice"``. The caller raises it.

    Args:
        value: What was given (its ``repr`` in the message, cut after 80 characters).
        name: The argument's name.
        rule: What it must be (``"a str, or None"``), after "to be".
        owner: Who takes it (``"voice_app"``); without, the sentence is "name must be ...".
        fix: A sentence (or more) after it, saying how to give it.
        error: The class of the error: ``ArgumentError`` or a layer's subclass of it.

    Returns:
        The error (of the class ``error``), not raised.
    """
    wanted = f"{owner} needs {name} to be {rule}" if owner else f"{name} must be {rule}"
    shown = repr(value)
    if len(shown) > _MOST_SHOWN:
        shown = f"{shown[:_MOST_SHOWN]}..."
    refused = error(f"{wanted}; got {shown}." + (f" {fix}" if fix else ""))
    refused.parameter = name
    return refused


def a_class(cls: type | str) -> str:
    """The class's name after its article, for a sentence: ``a Weather``, ``an OfflineMessage``.

    ``cls`` may be the name itself (a stream's ``what``, a row's class name).

    The article follows the sound: an initialism by its first letter's name ("an HTTPError",
    "an OSError", "a UUID"), a word by its first letter, but for the few that sound otherwise
    ("a Unit", "a User", "an Hour").
    """
    name = cls if isinstance(cls, str) else cls.__name__
    if name[:2].isupper() and name[:2].isalpha():  # an initialism: its letters are spoken
        vowel = name[0] in _SPOKEN_WITH_A_VOWEL
    else:
        word = name.lower()
        vowel = word.startswith(_VOWELS) and not word.startswith(_LIKE_YOU)
        vowel = vowel or word.startswith(_SILENT_H)
    return f"{'an' if vowel else 'a'} {name}"


_SPOKEN_WITH_A_VOWEL = "AEFHILMNORSX"
"""The capital letters whose names start with a vowel's sound ("ef", "aitch", "em", ...)."""

_VOWELS = ("a", "e", "i", "o", "u")

_LIKE_YOU = (
    *("unic", "unif", "union", "uniq", "unit", "univ", "unix", "uint", "us", "ut", "uu"),
    *("eu", "one", "once"),
)
"""How the words that start with a vowel but sound "you" begin ("a Unit", "a User")."""

_SILENT_H = ("hour", "honest", "honor", "honour", "heir")
"""How the words that start with a silent "h" begin ("an Hour")."""


_MOST_SHOWN = 80
"""The most characters of the refused value's ``repr`` a message shows (a long one is cut)."""
