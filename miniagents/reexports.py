"""Names that a module re-exports from their homes: a facade's table, a former home's warning.

A facade (``miniagents``, ``miniagents.errors``, a package that re-exports its modules)
lists each name once, in a :class:`Reexports` table of the modules that define them. The
runtime reads the table: the facade's ``__getattr__`` imports a name's home at its first use
(so that a facade can name an extension's errors without importing the extension), its
``__dir__`` and ``__all__`` list the table. Type checkers read a stub beside the facade
(``errors.pyi``), made of the same table by :meth:`Reexports.stub` (a test checks that the
two agree): each name there is a static ``from home import Name as Name``, its exact type.

A module that moved leaves its former home behind, a module that only re-exports; one that
is deprecated warns when it is imported (:func:`warn_former_home`), naming the new home. A
class shown under a module other than its home resolves its annotations first
(:func:`resolve_own_annotations`).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import get_type_hints

__all__ = ["FORMER_HOMES_GO_AFTER", "Reexports", "resolve_own_annotations", "warn_former_home"]


class Reexports:
    """What a facade re-exports: each name with its home, the module that defines it.

    Args:
        facade: The facade's module name (its ``__name__``).
        homes: Each home (a module name) with the names re-exported from it, separated by
            spaces.
        eager: The homes imported when the table is made (as a facade's imports would), for
            what importing them does; the others are imported at the first use of a name.

    Use it as ``__getattr__ = table.attribute`` and ``__dir__ = table.dir`` in the facade,
    with ``__all__ = table.names``; a facade with eager homes binds their names at once
    (``globals().update(table.imported())``).
    """

    __slots__ = ("_eager", "_homes", "facade", "names")

    def __init__(self, facade: str, homes: Mapping[str, str], *, eager: Iterable[str] = ()) -> None:
        self.facade = facade
        self._homes = {name: home for home, names in homes.items() for name in names.split()}
        self._eager = list(eager)
        self.names: list[str] = sorted(self._homes, key=_by_kind)
        """Every name re-exported (constants, classes, the rest; each sorted): ``__all__``."""

    def imported(self) -> dict[str, object]:
        """The names of the eager homes, each home imported now: the facade binds them.

        A name bound so is the facade's own from then on, as an import statement would make
        it; it must be, where a submodule of the facade has the same name (``pipeline``):
        importing the submodule sets the facade's attribute to it.
        """
        modules = {home: importlib.import_module(home) for home in self._eager}
        return {
            name: getattr(modules[home], name)
            for name, home in self._homes.items()
            if home in modules
        }

    def attribute(self, name: str) -> object:
        """The facade's ``__getattr__``: the name from its home (imported at its first use).

        Raises:
            AttributeError: for a name the facade does not have, as any module does.
        """
        home = self._homes.get(name)
        if home is None:
            raise AttributeError(f"module {self.facade!r} has no attribute {name!r}")
        module = sys.modules.get(home) or importlib.import_module(home)
        return getattr(module, name)

    def dir(self) -> list[str]:
        """The facade's ``__dir__``: its own names and the names it re-exports."""
        return sorted({*vars(sys.modules[self.facade]), *self._homes})

    def stub(self, declared: str = "") -> str:
        """The facade's stub for type checkers: a static import of each name from its home.

        ``declared``: lines of the stub for what the facade defines itself (such as
        ``__version__: str``). Its ``__all__`` lists the names by home, a line (or a few) for
        each (the stubs are written by this, not formatted by ruff).
        """
        lines = [f"# Made from the table of {self.facade} (Reexports.stub): do not edit.", ""]
        for name, home in sorted(self._homes.items(), key=_by_home):
            line = f"from {home} import {name} as {name}"
            lines.append(
                line if len(line) <= 100 else f"from {home} import (\n    {name} as {name},\n)"
            )
        by_home: dict[str, list[str]] = {}
        for name, home in sorted(self._homes.items(), key=_by_home):
            by_home.setdefault(home, []).append(f'"{name}",')
        lines += [
            "",
            "__all__ = [",
            *(line for names in by_home.values() for line in _wrapped(names)),
        ]
        lines.append("]")
        return "\n".join([*lines, *(["", declared.strip()] if declared.strip() else [])]) + "\n"


def _wrapped(items: list[str]) -> list[str]:
    """``items`` as lines of at most 100 characters, indented."""
    lines = [""]
    for item in items:
        if lines[-1] and len(lines[-1]) + 1 + len(item) > 96:
            lines.append("")
        lines[-1] = f"{lines[-1]} {item}" if lines[-1] else item
    return [f"    {line}" for line in lines]


def _by_kind(name: str) -> tuple[int, str]:
    """Constants first, then classes, then the rest (the order of ruff's isort style)."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2), name


def _by_home(pair: tuple[str, str]) -> tuple[str, int, str]:
    """A stub's imports by home, then as ruff's isort orders the names of one home."""
    name, home = pair
    return home, _by_kind(name)[0], name.lower()


FORMER_HOMES_GO_AFTER = "2027-06-30"
"""The deprecated former homes are removed in the first release after this date."""


def warn_former_home(former: str, home: str) -> None:
    """Warn that the module ``former`` is deprecated: what it re-exports lives in ``home``.

    Called once, as the former home is imported; the warning points at the import.
    """
    warnings.warn(
        f"{former} is deprecated: import from {home} instead ({former} goes in the first "
        f"release after {FORMER_HOMES_GO_AFTER}).",
        DeprecationWarning,
        stacklevel=3,  # the former home's import statement (importlib's frames are skipped)
    )


def resolve_own_annotations(cls: type) -> None:
    """Evaluate ``cls``'s own string annotations now, in its home module, once and for all.

    ``typing.get_type_hints`` reads a class's string annotations in the module its
    ``__module__`` names: call this before showing the class under another module (a
    facade, a former home), which does not import what they name (``ClassVar``, say). The
    ``__init__`` a dataclass makes reads its fields' types in the module of the class it
    is made for: a dataclass resolves its fields' too, for the ``__init__`` of its
    subclasses in other modules. An annotation that names what is not defined at run time
    (one imported only for type checkers) leaves them all strings.
    """
    own = inspect.get_annotations(cls)
    if not own:
        return
    try:
        hints = get_type_hints(cls, include_extras=True)
    except NameError:
        return
    cls.__annotations__ = {name: hints[name] for name in own}
    if dataclasses.is_dataclass(cls):
        for each in dataclasses.fields(cls):
            if each.name in own:
                each.type = hints[each.name]
