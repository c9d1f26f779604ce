"""Verilator builds, cached per configuration under ``build/``.

A build directory is named after the configuration (``cfg.name``) and stamped with a
digest of everything that goes into it (sources, flags, toolchain version). A matching
stamp means the model is reused; anything else rebuilds from scratch. A failed build
raises :class:`hw.toolchain.ToolchainError` naming the log file, never a C++ wall.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from hw.toolchain import MAKE_OPT, ToolchainError, check_verilator, verilator_env, verilator_exe

__all__ = ["BUILD_ROOT", "FAST_FLAGS", "digest", "cached_build", "run_logged"]

#: Root of every generated artefact; override with HPT_BUILD_DIR.
BUILD_ROOT = Path(os.environ.get("HPT_BUILD_DIR", "build"))

#: Verilator flags for simulation speed (TOOLCHAIN.md: 0.87-0.92x of hand-written SV).
FAST_FLAGS = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert"]


def digest(files, extra) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    h.update(repr(check_verilator()).encode())
    h.update(MAKE_OPT.encode())          # the C++ optimisation levels (make variables)
    return h.hexdigest()[:16]


def run_logged(cmd, log: Path, *, cwd=None, env=None, what: str) -> None:
    """Run ``cmd`` with output to ``log``; on failure raise one clear error naming ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        f.write("$ " + " ".join(map(str, cmd)) + "\n")
        f.flush()
        rc = subprocess.run(list(map(str, cmd)), cwd=cwd, env=env or verilator_env(),
                            stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise ToolchainError(f"{what} failed (exit {rc}); full log: {log}\n  " + "\n  ".join(tail))


def cached_build(build_dir: Path, stamp: str, build) -> Path:
    """Call ``build(build_dir)`` unless ``build_dir`` already holds a build with ``stamp``."""
    stamp_file = build_dir / ".hpt-stamp"
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return build_dir
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    build(build_dir)
    stamp_file.write_text(stamp)
    return build_dir


def verilate_exe(top: str, sources, build_dir: Path, exe: str, *, defines=(), cflags=(),
                 flags=()) -> Path:
    """Build a standalone C++ harness with ``verilator --cc --exe --build``."""
    cflags = [*cflags, *(f"-D{d}" for d in defines)]
    cmd = [verilator_exe(), "--cc", "--exe", "--build", "-j", "2", *FAST_FLAGS, *flags,
           "-Wno-fatal", "--top-module", top, "--prefix", "Vcore", "-Mdir", build_dir / "obj",
           "-o", exe, *(["-CFLAGS", " ".join(cflags)] if cflags else []), *sources]
    run_logged(cmd, build_dir / "build.log", what=f"Verilator build of {top}")
    return build_dir / "obj" / exe
