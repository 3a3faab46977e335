"""The extensions' own errors: ``MissingExtraError.unless_importable``."""

from __future__ import annotations

import pytest

from miniagents.ext.errors import MissingExtraError


def test_unless_importable_names_the_first_missing_package_and_keeps_the_import_error() -> None:
    hint = 'this needs {module}: pip install "miniagents[x]"'
    MissingExtraError.unless_importable(["json", "email.message"], hint)  # all there: no error
    with pytest.raises(MissingExtraError) as raised:
        MissingExtraError.unless_importable(
            ["json", "no_such_package_here.sub", "no_such_other_one"], hint
        )
    assert str(raised.value) == 'this needs no_such_package_here: pip install "miniagents[x]"'
    assert isinstance(raised.value, ImportError)
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)
