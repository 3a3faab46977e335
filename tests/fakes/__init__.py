"""Pytest fixtures over the testing kit (:mod:`miniagents.testing`).

``tests/fakes/fixtures.py`` holds the ``fake_llm`` and ``virtual_clock`` fixtures
(registered for every test module by ``tests/conftest.py``). The kit's own tests are in
``tests/testing/``.
"""
