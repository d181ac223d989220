"""A test that needs the evaluation set skips without it on a developer's machine and fails in CI (``CI=true``),
where a skip would let every real-speech test pass unrun. Runs pytest on a one-test file with the real fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 error")])
def test_no_eval_set_skips_locally_and_fails_in_ci(tmp_path, ci, outcome):
    fixtures = (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('suite_conftest', {str(TESTS / 'conftest.py')!r})\n"
        "suite = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(suite)\ndev_dir = suite.dev_dir\n"
    )
    (tmp_path / "conftest.py").write_text(fixtures)
    (tmp_path / "test_needs_speech.py").write_text("def test_it(dev_dir):\n    assert dev_dir.is_dir()\n")
    env = {**os.environ, "ASRFORGE_EVAL_DATA": str(tmp_path / "nowhere"), "CI": ci}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert outcome in done.stdout and (done.returncode != 0) == bool(ci), done.stdout  # a fixture's failure: error
    assert "asrforge data" in done.stdout and str(tmp_path / "nowhere" / "dev") in done.stdout
