"""The gate's base commit: which one, its checkout in a git worktree beside the head, and an import folder through
which a Python process runs the base's code with the head's installed dependencies.

The project's folders sit at the top level (``engines/``, ``optimizations/``, ...) and install as ``asrforge.*``
through ``[tool.setuptools] package-dir`` in pyproject.toml; an editable install maps them with a finder that points
at the head. For the base, ``import_root`` builds a folder ``asrforge/`` of symbolic links that lays the base's
folders out as that mapping (read from the *base's* pyproject) says; put first on ``PYTHONPATH`` it is found before
the editable finder (which Python consults after the path), so every ``asrforge`` import of that process is the
base's code.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib


class BaseUnavailable(Exception):
    """The base commit cannot be found, checked out or run: the gate cannot judge (exit 2)."""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BaseUnavailable(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _resolves(root: Path, rev: str) -> str | None:
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except BaseUnavailable:
        return None


@dataclass(frozen=True)
class Base:
    commit: str
    how: str  # why this commit: "merge base with main", "HEAD~1 (the last landed commit)", "asked for: v1"


def resolve_base(root: Path, rev: str = "auto", main: str = "main") -> Base:
    """The commit to compare the working tree with: ``rev`` when given; else the merge base of HEAD and ``main``
    (``origin/main`` in a clone without a local one), unless that is HEAD itself (on main, or a branch main already
    holds): then HEAD when the working tree has uncommitted changes, else the last landed commit,
    HEAD~1. A shallow clone or a one-commit history cannot give a base."""
    if rev != "auto":
        commit = _resolves(root, rev)
        if commit is None:
            raise BaseUnavailable(f"the base {rev!r} is not a commit of {root}")
        return Base(commit, f"asked for: {rev}")
    head = _resolves(root, "HEAD")
    if head is None:
        raise BaseUnavailable(f"{root} has no commit yet")
    for ref in (main, f"origin/{main}"):
        if _resolves(root, ref) is None:
            continue
        try:
            merge_base = git(root, "merge-base", "HEAD", ref)
        except BaseUnavailable:
            break  # unrelated histories, or a shallow clone that lacks the common ancestor
        if merge_base != head:
            return Base(merge_base, f"merge base with {ref}")
        break
    if git(root, "status", "--porcelain", "--untracked-files=no"):
        return Base(head, "HEAD (the working tree's uncommitted changes against it)")
    parent = _resolves(root, "HEAD~1")
    if parent is not None:
        return Base(parent, "HEAD~1 (the last landed commit)")
    if git(root, "rev-parse", "--is-shallow-repository") == "true":
        raise BaseUnavailable("the clone is shallow and holds no parent of HEAD: fetch more history (depth 2 or more)")
    raise BaseUnavailable("HEAD is the only commit: there is nothing to compare it with")


def add_worktree(root: Path, commit: str, where: Path) -> Path:
    """Check ``commit`` out, detached, in a new git worktree at ``where``."""
    git(root, "worktree", "add", "--detach", "--quiet", str(where), commit)
    return where


def remove_worktree(root: Path, where: Path) -> None:
    subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(where)], capture_output=True)
    subprocess.run(["git", "-C", str(root), "worktree", "prune"], capture_output=True)


def package_dirs(checkout: Path) -> dict[str, str]:
    """``asrforge.*`` package -> folder of ``checkout``, from its pyproject's ``[tool.setuptools] package-dir``."""
    pyproject = checkout / "pyproject.toml"
    try:
        mapping = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"].get("package-dir", {})
    except (OSError, KeyError, tomllib.TOMLDecodeError) as error:
        raise BaseUnavailable(f"cannot read the package layout of {pyproject}: {error}") from error
    return {"asrforge": "asrforge", **mapping}


def import_root(checkout: Path, where: Path) -> Path:
    """A folder to put first on ``PYTHONPATH`` so that ``import asrforge...`` imports ``checkout``'s code."""
    mapping = package_dirs(checkout)
    package = where / "asrforge"
    package.mkdir(parents=True)
    core = checkout / mapping["asrforge"]
    if not (core / "__init__.py").is_file():
        raise BaseUnavailable(f"{core} is not the asrforge package")
    for entry in core.iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    # Top-level sub-packages only (asrforge.engines = engines/); deeper ones live inside them and come along.
    for name, folder in sorted(mapping.items()):
        parts = name.split(".")
        if len(parts) == 2 and parts[0] == "asrforge":
            link = package / parts[1]
            if link.is_symlink():
                link.unlink()
            link.symlink_to(checkout / folder)
    return where
