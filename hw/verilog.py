"""Deterministic Verilog generation: ``<top>.v`` plus ``<top>.json`` (config and ports)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

__all__ = ["generate", "port_list"]


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


def generate(component: wiring.Component, name: str, out_dir: os.PathLike, *,
             config: dict | None = None) -> tuple[Path, Path]:
    """Write ``out_dir/<name>.v`` and ``out_dir/<name>.json``; return both paths.

    Both files are written whole or not at all (temporary file, then rename).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(component, name=name, emit_src=False)
    meta = {
        "top": name,
        "config": config or {},
        "ports": port_list(component),
        "signature": component.metadata.as_json(),
    }
    v_path, j_path = out / f"{name}.v", out / f"{name}.json"
    _atomic_write(v_path, text)
    _atomic_write(j_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return v_path, j_path
