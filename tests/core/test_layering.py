"""The house's layering, read from the source: the runtime (core, engines, plugins, subtitles, translation,
diarization) never imports the server or the harness, and the server never imports the harness. The CLI reaches
`serve`, `run` and `report` through entry points, so it imports neither either."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Folder on disk -> the package it installs as (pyproject.toml's package-dir).
RUNTIME = ("asrforge", "engines", "optimizations")
SERVER = ("serving",)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def offenders(folders: tuple[str, ...], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            bad = sorted(m for m in imported_modules(path) if m.startswith(forbidden))
            if bad:
                found[str(path.relative_to(ROOT))] = bad
    return found


def test_the_runtime_imports_neither_the_server_nor_the_harness():
    assert offenders(RUNTIME, ("asrforge.serving", "asrforge.experiments")) == {}


def test_the_server_does_not_import_the_harness():
    assert offenders(SERVER, ("asrforge.experiments",)) == {}


def test_the_checker_sees_an_import_it_must_refuse(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from asrforge.serving.run import main\n")
    assert imported_modules(bad) == {"asrforge.serving.run"}


SIDE_PACKAGES = "[m for m in sys.modules if m.startswith(('asrforge.serving', 'asrforge.experiments'))]"


def loaded_side_packages(code: str) -> str:
    script = f"import sys\n{code}\nprint({SIDE_PACKAGES})"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()


def test_the_cli_imports_neither_and_finds_serve_run_and_report_as_entry_points():
    assert loaded_side_packages("import asrforge.cli") == "[]"
    found = loaded_side_packages(
        "from asrforge.cli import _registered\n"
        "names = [_registered(name).__name__ for name in ('serve', 'run', 'report')]\n"
        "assert names == ['main', 'run_main', 'report_main'], names"
    )
    assert "asrforge.serving.run" in found and "asrforge.experiments" in found
