"""What the core and each extra take on disk: a fresh virtual environment per install.

Run by hand from the repository root (pytest never collects it); it needs PyPI::

    python tests/benchmarks/install_sizes.py                    # the core and the LLM extras
    python tests/benchmarks/install_sizes.py --extras gemini bedrock all

For the core, a fresh virtual environment gets ``pip install .`` (a copy of the package,
not a link); for each extra, another fresh one gets ``pip install ".[extra]"``. Sizes are
the sum of the files' sizes (``du --apparent-size``, in MB of 10**6 bytes): the whole
environment for the core (pip included, as a user's would be), and for an extra what it
adds to the core's. The figures move with every release of the SDKs and their
dependencies: the docs state none, and point here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LLM_EXTRAS = ["openai", "anthropic", "gemini", "bedrock"]


def _size(folder: Path) -> int:
    """The sum of the sizes of the files under ``folder`` (links not followed)."""
    total = 0
    for path, _, files in os.walk(folder):
        for name in files:
            total += os.lstat(os.path.join(path, name)).st_size
    return total


def _install(target: str, where: Path) -> tuple[int, float]:
    """A fresh environment in ``where`` with ``target`` installed: its size, the seconds taken."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    started = time.perf_counter()
    subprocess.run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", target],
        check=True,
        cwd=ROOT,
    )
    return _size(where), time.perf_counter() - started


def main() -> None:
    """Install the core, then each extra, and print the sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", nargs="*", default=LLM_EXTRAS, help="the extras to measure")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        core, seconds = _install(".", Path(scratch) / "core")
        print(f"core: {core / 1e6:.0f} MB (the whole environment), installed in {seconds:.0f} s")
        for extra in arguments.extras:
            size, seconds = _install(f".[{extra}]", Path(scratch) / extra)
            print(f"{extra}: +{(size - core) / 1e6:.0f} MB beyond the core ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
