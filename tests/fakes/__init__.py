"""Pytest fixtures over the testing kit, and a virtual clock.

The fake LLM server is public: :mod:`miniagents.testing`. ``tests/fakes/fixtures.py``
holds the ``fake_llm`` and ``virtual_clock`` fixtures (registered for every test module by
``tests/conftest.py``); ``tests/fakes/virtual_clock.py`` the clock. The server's own tests
are in ``tests/testing/``.
"""
