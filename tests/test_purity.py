"""The core stays pure: no I/O, clocks, threads or randomness under kafka_sansio/.

Two checks: a static one over every source file (catches imports inside
functions too), and a dynamic one that imports the whole package in a fresh
interpreter and compares ``sys.modules`` before and after.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "kafka_sansio"

FORBIDDEN = frozenset(
    {
        "socket",
        "ssl",
        "select",
        "selectors",
        "threading",
        "_thread",
        "asyncio",
        "trio",
        "anyio",
        "time",
        "random",
        "secrets",
        "subprocess",
        "multiprocessing",
        "concurrent",
    }
)
# kafka_sansio.testing may use hypothesis (a dev extra); nothing else in the core may.
TEST_ONLY = frozenset({"hypothesis"})


def forbidden_imports(source: str, *, allow_test_only: bool = False) -> list[str]:
    """Return 'line: module' for every forbidden import in ``source``."""
    banned = FORBIDDEN if allow_test_only else FORBIDDEN | TEST_ONLY
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            if name.split(".")[0] in banned:
                found.append(f"{node.lineno}: {name}")
    return found


def core_sources() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_has_sources() -> None:
    assert (CORE / "__init__.py") in core_sources()


@pytest.mark.parametrize("path", core_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_is_pure(path: Path) -> None:
    in_testing = "testing" in path.relative_to(CORE).parts
    bad = forbidden_imports(path.read_text(encoding="utf-8"), allow_test_only=in_testing)
    assert not bad, f"{path.relative_to(ROOT)} imports I/O, clocks, threads or randomness: {bad}"


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "import time as clock",
        "from random import Random",
        "from concurrent.futures import Future",
        "def f():\n    import threading\n",
        "import importlib\nimportlib.import_module('selectors')",
        "__import__('asyncio')",
        "import hypothesis",
    ],
)
def test_checker_catches_forbidden_imports(source: str) -> None:
    assert forbidden_imports(source)


def test_checker_allows_pure_imports() -> None:
    assert not forbidden_imports("import struct\nfrom zlib import crc32\nfrom . import time\n")
    assert not forbidden_imports("import hypothesis", allow_test_only=True)


def test_importing_the_core_loads_no_io_module() -> None:
    """Import kafka_sansio and every non-testing submodule in a clean interpreter."""
    script = """
import json, pkgutil, sys
before = set(sys.modules)
import kafka_sansio
for info in pkgutil.walk_packages(kafka_sansio.__path__, "kafka_sansio."):
    if ".testing" not in info.name:
        __import__(info.name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""
    out = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    loaded = json.loads(out)
    bad = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN | TEST_ONLY)
    assert not bad, f"importing the core loaded {bad}"
    assert not any(m.startswith("kafka_sansio.transports") for m in loaded)
