"""The accelerator: one systolic core and K ReRAM tiles in one module.

Each unit keeps its own command channel (its command stream and data streams), so the
units work concurrently, as the host schedules them: the systolic core on LoRA and
attention products while the tiles run MVMs of the frozen weights. The chip's ports are
the units' ports under a prefix — ``sa__cmd``, ``sa__a``, ... for the core and
``t<k>__cmd``, ``t<k>__vin``, ... for tile ``k`` — plus a ``busy`` vector (bit 0: the
core, bit ``1 + k``: tile ``k``).

Tile ``k`` is built with device seed ``tile.seed + k`` (its own programming errors,
faults and read noise), the placement :class:`sw.backends.FunctionalDevice` models.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from amaranth import Cat, ClockSignal, Const, Instance, Module, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from .reram import TileConfig
from .systolic import SystolicConfig, SystolicCore

__all__ = ["ChipConfig", "Chip", "generate_chip", "tile_module"]

MAX_TILES = 7            # the harness gives each channel two header words below word 16


@dataclass(frozen=True)
class ChipConfig:
    systolic: SystolicConfig
    tile: TileConfig
    tiles: int = 1

    def __post_init__(self):
        if not isinstance(self.systolic, SystolicConfig):
            raise TypeError(f"ChipConfig.systolic must be a SystolicConfig, not {self.systolic!r}")
        if not isinstance(self.tile, TileConfig):
            raise TypeError(f"ChipConfig.tile must be a TileConfig, not {self.tile!r}")
        if isinstance(self.tiles, bool) or not isinstance(self.tiles, int) \
                or not 1 <= self.tiles <= MAX_TILES:
            raise ValueError(f"ChipConfig.tiles must be an integer in [1, {MAX_TILES}], "
                             f"not {self.tiles!r}")

    def tile_config(self, k: int) -> TileConfig:
        return self.tile.physical(k)

    @property
    def name(self) -> str:
        """Verilog module / build-directory name; unique per configuration."""
        h = hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
        return (f"chip_sa{self.systolic.rows}x{self.systolic.cols}"
                f"_t{self.tiles}x{self.tile.rows}x{self.tile.cols}_{h}")

    def to_dict(self) -> dict:
        return {"systolic": self.systolic.to_dict(), "tile": self.tile.to_dict(),
                "tiles": self.tiles}

    @classmethod
    def from_dict(cls, d: dict) -> "ChipConfig":
        return cls(SystolicConfig.from_dict(d["systolic"]), TileConfig.from_dict(d["tile"]),
                   d["tiles"])


def tile_module(cfg: ChipConfig) -> str:
    """Module name of the chip's tile (one module for all K tiles: the seed is a port)."""
    return dataclasses.replace(cfg.tile, seed=0).name.removesuffix("_s0").replace("_s0_", "_") + "_sp"


class Chip(wiring.Component):
    """One systolic core (``sa``) and ``tiles`` ReRAM tiles (``t0`` ...), each behind its
    own command channel; see the module docstring.

    The units are instances of separately generated modules (:func:`generate_chip`
    writes all three files): the systolic core ``cfg.systolic.name`` and one tile module
    :func:`tile_module` whose device seed is an input, so Verilator compiles the tile
    once however many the chip holds.

    Ports
    -----
    sa : the :class:`hw.systolic.SystolicCore` ports (cmd, a, b, result, busy)
    t<k> : the :class:`hw.reram.ReramTile` ports of tile ``k`` (cmd, w, vin, vout, stats, busy)
    busy : Out(1 + tiles)
    """

    def __init__(self, cfg: ChipConfig):
        if not isinstance(cfg, ChipConfig):
            raise TypeError(f"cfg must be a ChipConfig, not {cfg!r}")
        from .reram.tile import ReramTile
        self.cfg = cfg
        core, tile = SystolicCore(cfg.systolic), ReramTile(cfg.tile)   # for their signatures
        core._MustUse__silence = tile._MustUse__silence = True            # (never elaborated)
        self._core_sig, self._tile_sig = core.signature, tile.signature   # tile: no seed port
        members = {"sa": Out(self._core_sig)}
        for k in range(cfg.tiles):
            members[f"t{k}"] = Out(self._tile_sig)
        members["busy"] = Out(1 + cfg.tiles)
        super().__init__(members)

    @staticmethod
    def _ports(iface) -> dict:
        ports = {}
        for path, member, value in iface.signature.flatten(iface):
            name = "__".join(str(p) for p in path)
            ports[("i_" if member.flow == wiring.In else "o_") + name] = value
        return ports

    def elaborate(self, platform):
        m = Module()
        clocks = dict(i_clk=ClockSignal(), i_rst=ResetSignal())
        m.submodules.sa = Instance(self.cfg.systolic.name, **clocks, **self._ports(self.sa))
        for k in range(self.cfg.tiles):
            iface = getattr(self, f"t{k}")
            m.submodules[f"t{k}"] = Instance(
                tile_module(self.cfg), **clocks, **self._ports(iface),
                i_seed=Const(self.cfg.tile_config(k).seed, 32))
        m.d.comb += self.busy.eq(Cat(self.sa.busy, *(getattr(self, f"t{k}").busy
                                                     for k in range(self.cfg.tiles))))
        return m


def _mark_hier_block(path, module: str) -> None:
    """Tag the tile as a Verilator hierarchical block: with ``--hierarchical`` it is
    verilated and compiled once, however many instances the chip has."""
    text = path.read_text()
    head = text.index(f"module {module}(")
    end = text.index(");", head) + 2
    if "verilator hier_block" not in text[end:end + 40]:
        path.write_text(text[:end] + " /*verilator hier_block*/" + text[end:])


def generate_chip(cfg: ChipConfig, out_dir) -> list:
    """Write the chip's three modules (systolic core, tile, chip top) as ``.v`` + ``.json``
    under ``out_dir``; return the Verilog paths, top last."""
    from .reram.tile import ReramTile
    from .verilog import generate
    sa, _ = generate(SystolicCore(cfg.systolic), cfg.systolic.name, out_dir,
                     config=cfg.systolic.to_dict())
    tile, _ = generate(ReramTile(cfg.tile, seed_port=True), tile_module(cfg), out_dir,
                       config={**cfg.tile.to_dict(), "seed": "port"})
    _mark_hier_block(tile, tile_module(cfg))
    top, _ = generate(Chip(cfg), cfg.name, out_dir, config=cfg.to_dict())
    return [sa, tile, top]
