"""``register``: a part added once to a registry, and a remover that takes it out once."""

from __future__ import annotations

from miniagents.miniagents.registering import register


def test_a_part_is_added_once_and_its_remover_takes_it_out_once() -> None:
    registry = ["first"]
    remove = register(registry, "second")
    remove_again = register(registry, "second")
    assert registry == ["first", "second"]
    remove()
    assert registry == ["first"]
    remove_again()  # (already out: nothing happens)
    remove()
    assert registry == ["first"]
    register(registry, "second")
    assert registry == ["first", "second"]
