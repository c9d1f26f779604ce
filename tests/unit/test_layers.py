"""The layers import downwards only: hw/ (gateware) <- sw/ (host) <- cosim/ (co-simulation)
<- hpt/ (the command line). A test that reads every module's imports."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: what each layer must not import
FORBIDDEN = {"hw": {"sw", "cosim", "hpt"}, "sw": {"cosim", "hpt"}, "cosim": {"hpt"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_downwards_only(layer):
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        hit = _imports(path) & FORBIDDEN[layer]
        if hit:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(hit)}")
    assert not bad, "\n".join(bad)


def test_the_check_sees_an_upward_import(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from cosim.sim import run_cocotb\n")
    assert "cosim" in _imports(p)
