"""Deterministic Verilog generation: ``<top>.v`` plus ``<top>.json`` (config and ports).

Generation is skipped when ``<top>.json`` records the same generator key: a digest of the
component's class, name, ``config``, signature, the Amaranth version and every source file
of ``hw/``. The caller's ``config`` must therefore describe the component fully (every
caller passes the config object's dict, plus any constructor option, e.g. the tile's seed
port); without a ``config`` the Verilog is always regenerated.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.lib import wiring

__all__ = ["generate", "generator_key", "port_list", "parse_ports"]


def port_list(component: wiring.Component) -> list[dict]:
    """Flattened Verilog ports of a component, as Amaranth names them (``cmd__valid``...),
    plus the implicit ``clk``/``rst``."""
    ports = [{"name": "clk", "dir": "input", "width": 1},
             {"name": "rst", "dir": "input", "width": 1}]
    for path, member, _value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        ports.append({"name": name, "dir": "input" if member.flow == wiring.In else "output",
                      "width": member.shape.size if hasattr(member.shape, "size")
                      else len(_value)})
    return ports


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@functools.lru_cache(maxsize=1)
def _hw_sources_digest() -> str:
    """Digest of every Python source of ``hw/`` (what the gateware is made of)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def generator_key(component: wiring.Component, name: str, config: dict | None) -> str | None:
    """What ``<name>.v`` is a function of (module docstring); None without a config."""
    if config is None:
        return None
    what = {"class": f"{type(component).__module__}.{type(component).__qualname__}",
            "name": name, "config": config, "signature": component.metadata.as_json(),
            "amaranth": amaranth.__version__, "hw": _hw_sources_digest()}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _generated(v_path: Path, j_path: Path, key: str | None) -> bool:
    if key is None or not v_path.is_file() or not j_path.is_file():
        return False
    try:
        return json.loads(j_path.read_text()).get("generator") == key
    except (OSError, ValueError):
        return False


def generate(component: wiring.Component, name: str, out_dir: os.PathLike, *,
             config: dict | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/<name>.v`` and ``out_dir/<name>.json``; return both paths. Files
    already there from the same generator key (module docstring) are kept as they are.

    Both files are written whole or not at all (temporary file, then rename); the
    ``.json``, which holds the key, last.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out / f"{name}.v", out / f"{name}.json"
    key = generator_key(component, name, config)
    if _generated(v_path, j_path, key):
        return v_path, j_path
    text = verilog.convert(component, name=name, emit_src=False)
    meta = {
        "top": name,
        "config": config or {},
        "ports": port_list(component),
        "signature": component.metadata.as_json(),
        "generator": key,
    }
    j_path.unlink(missing_ok=True)        # no key on disk until both files are this key's
    _atomic_write(v_path, text)
    _atomic_write(j_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return v_path, j_path


def parse_ports(v_path: os.PathLike, top: str) -> dict[str, tuple[str, int]]:
    """Ports of module ``top`` in a Verilog file, parsed with pyverilog: name -> (dir, width).

    pyverilog 1.3 does not accept Verilog-2001 attributes inside module bodies, so
    ``(* ... *)`` attributes are removed first (they carry no port information); its
    preprocessor (which would need Icarus Verilog) is not used.
    """
    from pyverilog.vparser import ast as vast
    from pyverilog.vparser.parser import VerilogParser

    text = re.sub(r"\(\*.*?\*\)", "", Path(v_path).read_text())
    with tempfile.TemporaryDirectory() as tables:
        tree = VerilogParser(outputdir=tables, debug=False).parse(text)
    mods = [d for d in tree.description.definitions
            if isinstance(d, vast.ModuleDef) and d.name == top]
    if not mods:
        raise ValueError(f"{v_path}: no module named {top!r}")
    ports = {}

    def width(node) -> int:
        w = node.width
        if w is None:
            return 1
        return abs(int(w.msb.value) - int(w.lsb.value)) + 1

    def visit(node):
        if isinstance(node, (vast.Input, vast.Output, vast.Inout)):
            ports[node.name] = (type(node).__name__.lower(), width(node))
        for child in node.children():
            visit(child)

    visit(mods[0])
    return ports
