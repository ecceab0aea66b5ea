#!/usr/bin/env python3
"""Bootstrap for the two quick-start commands; needs only Python 3.11+.

    python3 dev.py serve   # install into .venv, load the demo, run on http://127.0.0.1:8000
    python3 dev.py test    # install with test extras into .venv, run the whole test suite

Anything after the command is passed on (``python3 dev.py serve --port 9000``,
``python3 dev.py test -k generic``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _install(extras: str) -> None:
    """(Re)install when pyproject.toml changed since the last install of these extras."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run on an older python3
        sys.exit("Linli needs Python 3.11 or newer")
    if not (BIN / "python").exists():
        print("creating .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("installing dependencies (first run takes a minute) …", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    target = f".[{extras}]" if extras else "."
    subprocess.run([*pip, "-e", target], check=True, cwd=ROOT)
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "serve":
        _install("")
        args = rest if any(a == "--demo" for a in rest) else ["--demo", *rest]
        return subprocess.call([str(BIN / "linli"), "serve", *args], cwd=ROOT)
    if command == "test":
        _install("dev")
        return subprocess.call([str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT)
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
