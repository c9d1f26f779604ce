"""An object cache for Verilator's makefiles, through their public ``OBJCACHE`` hook.

``verilated.mk`` compiles every object as ``$(OBJCACHE) $(CXX) ... -c [-o OUT] SRC``;
``OBJCACHE`` is a documented make variable meant for ccache, which is not on PyPI. This
module is such a prefix. It caches the objects whose source lies outside the build
directory: Verilator's runtime (``verilated.cpp`` ...) and our own C++ (``shim.cpp``),
which every model built with the same flags compiles identically and which take most
of a small model's build. The model's own generated C++ is compiled as usual.

An entry is keyed by the compiler binary, the arguments (the build directory written
as ``.``) and the source's bytes, and it records every header of the compile's ``-MMD``
dependency file with its hash: an entry is used only while all of them still hash the
same, so a changed header, define or flag recompiles (as ccache's direct mode). Entries
are written whole (a temporary folder renamed), so parallel builds can share the cache.

The module uses the standard library only: make starts it for every object, through a
small script that :func:`make_flag` writes and that loads this file by path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["make_flag", "main"]

_WRAPPER = """#!{python}
# OBJCACHE prefix for verilated.mk (cosim/objcache.py); written by make_flag().
import importlib.util, sys
spec = importlib.util.spec_from_file_location("hpt_objcache", {module!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
sys.exit(mod.main(sys.argv[1:], {cache!r}))
"""


def make_flag(cache_dir: Path) -> str | None:
    """``OBJCACHE=<wrapper>`` for make, with the wrapper written under ``cache_dir``;
    None when a path holds whitespace (make's variables cannot carry it)."""
    cache_dir = Path(cache_dir).resolve()
    text = _WRAPPER.format(python=sys.executable, module=str(Path(__file__).resolve()),
                           cache=str(cache_dir))
    wrapper = cache_dir / "cxx"
    if any(ch.isspace() for ch in str(wrapper) + sys.executable):
        return None
    if not wrapper.is_file() or wrapper.read_text() != text:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".cxx.{os.getpid()}"
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(wrapper)
    return f"OBJCACHE={wrapper}"


def main(argv: list[str], cache_dir: str) -> int:
    """Run the compile ``argv`` (``CXX ARGS...``), from the cache where it can."""
    job = _Compile.parse(argv, Path.cwd())
    if job is None:                                   # not a cacheable compile: run it
        return subprocess.call(argv)
    try:
        entry = Path(cache_dir) / job.key()
        if job.restore(entry):
            return 0
    except OSError:                                   # an unreadable cache: just compile
        entry = None
    rc = subprocess.call(argv)
    if rc == 0 and entry is not None:
        try:
            job.store(entry)
        except OSError:                               # a full or read-only cache: the
            pass                                      # object is built all the same
    return rc


class _Compile:
    def __init__(self, argv, cwd, source, output):
        self.argv, self.cwd, self.source, self.output = argv, cwd, source, output
        self.depfile = output.with_suffix(".d")

    @classmethod
    def parse(cls, argv, cwd: Path):
        """A ``-c`` compile of one source outside ``cwd`` (else None)."""
        if "-c" not in argv or "-MMD" not in argv:
            return None
        sources = [a for a in argv[1:] if a.endswith((".cpp", ".cc", ".c"))]
        if len(sources) != 1:
            return None
        source = Path(sources[0])
        if not source.is_absolute() or source.resolve().is_relative_to(cwd.resolve()):
            return None
        if "-o" in argv:
            output = cwd / argv[argv.index("-o") + 1]
        else:
            output = cwd / (source.stem + ".o")
        return cls(argv, cwd, source, output)

    def key(self) -> str:
        cxx = shutil.which(self.argv[0]) or self.argv[0]
        st = os.stat(cxx)
        args, skip = [], False
        for a in self.argv[1:]:
            if skip:
                skip = False
            elif a == "-o":
                skip = True
            else:
                args.append(a.replace(str(self.cwd), "."))
        h = hashlib.sha256(json.dumps([os.path.realpath(cxx), st.st_size, st.st_mtime_ns,
                                       args]).encode())
        h.update(self.source.read_bytes())
        return h.hexdigest()[:32]

    def _deps(self) -> list[str]:
        """Every file of the dependency file but the object itself."""
        text = self.depfile.read_text().replace("\\\n", " ")
        deps = []
        for line in text.splitlines():
            if ":" in line:
                deps += [d for d in line.split(":", 1)[1].split()]
        return list(dict.fromkeys(d for d in deps if d != str(self.source)))

    def _hash(self, path: str) -> str | None:
        p = Path(path) if os.path.isabs(path) else self.cwd / path
        try:
            return hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError:
            return None

    def restore(self, entry: Path) -> bool:
        try:
            headers = json.loads((entry / "headers.json").read_text())
        except (OSError, ValueError):
            return False
        if any(self._hash(path) != h for path, h in headers.items()):
            return False
        shutil.copyfile(entry / "object.o", self.output)
        shutil.copyfile(entry / "depfile.d", self.depfile)
        return True

    def store(self, entry: Path) -> None:
        if entry.exists() or not self.depfile.is_file():
            return
        headers = {d: self._hash(d) for d in self._deps()}
        if any(h is None for h in headers.values()):
            return
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=entry.parent))
        shutil.copyfile(self.output, tmp / "object.o")
        shutil.copyfile(self.depfile, tmp / "depfile.d")
        (tmp / "headers.json").write_text(json.dumps(headers))
        try:
            tmp.rename(entry)
        except OSError:                               # another build stored it first
            shutil.rmtree(tmp, ignore_errors=True)
