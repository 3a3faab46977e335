# pytest-xdist ships no types: the part tests/fakes/scheduling.py and tests/conftest.py use.
