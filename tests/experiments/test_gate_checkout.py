"""The gate's base commit: chosen as CI and developers need it (merge base with main, HEAD~1 on main, HEAD with
uncommitted changes), refused with a reason where there is none (one commit, a shallow clone), and run through an
import folder that maps a checkout's top-level folders into ``asrforge.*`` ahead of the installed package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from asrforge.experiments.gate.checkout import BaseUnavailable, add_worktree, import_root, remove_worktree, resolve_base
from asrforge.experiments.gate.trials import WORKER


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout.strip()


def commit(root: Path, name: str, text: str) -> str:
    (root / name).write_text(text)
    git(root, "add", name)
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", text)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    return root


def test_the_base_is_the_merge_base_on_a_branch_and_the_last_landed_commit_on_main(repo):
    with pytest.raises(BaseUnavailable, match="no commit"):
        resolve_base(repo)
    first = commit(repo, "a.txt", "one")
    with pytest.raises(BaseUnavailable, match="only commit"):
        resolve_base(repo)
    second = commit(repo, "a.txt", "two")
    assert resolve_base(repo) == resolve_base(repo, "auto", "main")
    assert resolve_base(repo).commit == first and "HEAD~1" in resolve_base(repo).how
    (repo / "a.txt").write_text("uncommitted")
    assert resolve_base(repo).commit == second and "uncommitted" in resolve_base(repo).how
    git(repo, "checkout", "-q", "--", "a.txt")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, "b.txt", "feature work")
    commit(repo, "b.txt", "more feature work")
    assert resolve_base(repo).commit == second and "merge base with main" in resolve_base(repo).how
    assert resolve_base(repo, "HEAD~2").commit == second
    with pytest.raises(BaseUnavailable, match="not a commit"):
        resolve_base(repo, "nothing-like-it")


def test_a_fresh_clone_of_main_compares_with_head_1_and_a_shallow_one_cannot(repo, tmp_path):
    first = commit(repo, "a.txt", "one")
    commit(repo, "a.txt", "two")
    clone, shallow = tmp_path / "clone", tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    assert resolve_base(clone).commit == first
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)], check=True)
    with pytest.raises(BaseUnavailable, match="shallow"):
        resolve_base(shallow)


def test_the_import_folder_maps_the_checkouts_folders_ahead_of_the_installed_package(repo, tmp_path):
    (repo / "asrforge").mkdir()
    (repo / "asrforge" / "__init__.py").write_text("")
    (repo / "engines").mkdir()
    (repo / "engines" / "__init__.py").write_text("WHERE = 'the base checkout'\n")
    (repo / "pyproject.toml").write_text('[tool.setuptools]\npackage-dir = { "asrforge.engines" = "engines" }\n')
    git(repo, "add", ".")
    commit(repo, "a.txt", "layout")
    base = add_worktree(repo, "HEAD", tmp_path / "base")
    try:
        imports = import_root(base, tmp_path / "imports")
        env = {**os.environ, "PYTHONPATH": str(imports)}
        isolate = f"import runpy; runpy.run_path({str(WORKER)!r}, run_name='worker')['isolate'](); "
        done = subprocess.run(
            [sys.executable, "-c", isolate + "import asrforge.engines as e; print(e.WHERE)"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.stdout.strip() == "the base checkout", done.stderr
        # The installed (editable) asrforge has an asrforge.paths; the base does not, and the worker sees only it.
        done = subprocess.run(
            [sys.executable, "-c", isolate + "import asrforge.paths"], env=env, capture_output=True, text=True
        )
        assert "No module named 'asrforge.paths'" in done.stderr
    finally:
        remove_worktree(repo, base)
    assert not base.exists() and str(base) not in git(repo, "worktree", "list")
