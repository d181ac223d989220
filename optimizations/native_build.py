"""A C source of this package built once per machine into a shared library (cached on disk) and loaded with ctypes.

Why not torch.utils.cpp_extension: it compiles against torch's C++ headers (tens of seconds, the first start of every
new torch version) for kernels that only need pointers; a plain C file builds in a fraction of a second. Why not
ship binaries: ``-march=native`` is the point (AVX-512 where the processor has it). The library's key covers the
source, the compiler, the flags and the processor's instruction sets, so a cache shared between machines (or kept
across a compiler upgrade) never loads a library built for another processor. ctypes releases the GIL for the call.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from asrforge.errors import ConfigError
from asrforge.paths import cache_dir

FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c11")


def compiler() -> str:
    return os.environ.get("CC", "cc")


def compiler_refusal(name: str) -> str | None:
    """Why ``name`` cannot build its kernel here, or None."""
    if shutil.which(compiler()) is None:
        return f"{name} builds a C kernel and needs a C compiler ({compiler()!r} not found; set CC)"
    return None


def load_library(source: Path) -> ctypes.CDLL:
    """``source`` compiled with ``FLAGS`` (built on first use, then read from ``cache_dir()/native``)."""
    code = source.read_bytes()
    key = hashlib.sha256(
        b"\0".join([code, _compiler_version(compiler()).encode(), " ".join(FLAGS).encode(), _cpu().encode()])
    )
    path = cache_dir() / "native" / f"{source.stem}-{key.hexdigest()[:16]}.so"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
        os.close(fd)
        try:
            done = subprocess.run([compiler(), *FLAGS, str(source), "-o", tmp], capture_output=True, text=True)
            if done.returncode:
                raise ConfigError(f"building {source.name} failed: {done.stderr.strip()[-500:]}")
            os.replace(tmp, path)  # atomic: another process never loads a half-written library
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return _open(str(path))


@cache
def _open(path: str) -> ctypes.CDLL:
    return ctypes.CDLL(path)


@cache
def _compiler_version(name: str) -> str:
    """Keyed by the compiler's name: ``$CC`` may change within a process."""
    done = subprocess.run([name, "--version"], capture_output=True, text=True)
    return done.stdout.splitlines()[0] if done.stdout else name


@cache
def _cpu() -> str:
    """The processor's model and instruction-set flags (Linux); elsewhere the platform's name for it."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("model name", "flags", "Features", "CPU part")  # x86 and Arm spellings
    lines = [line for line in text.splitlines() if line.split(":")[0].strip() in wanted]
    return f"{platform.machine()} " + "\n".join(dict.fromkeys(lines))
