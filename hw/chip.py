"""The accelerator's RTL: N systolic cores and K ReRAM tiles in one module.

The chip is generated from a :class:`hw.manycore.ManycoreConfig` (the one description of
the accelerator); the RTL top implements its blocks as K ``ReramTile`` instances
(``K = cfg.blocks``, at most :data:`MAX_TILES`) and its ``N = cfg.systolic_cores``
systolic cores (at most :data:`MAX_CORES`) as N ``SystolicCore`` instances.

Each unit keeps its own command channel (its command stream and data streams), so the
units work concurrently, as the host schedules them: the systolic cores on LoRA and
attention products (split over the cores by :func:`hw.placement.assign_products`) while
the tiles run MVMs of the frozen weights. The chip's ports are the units' ports under a
prefix — ``sa<c>__cmd``, ``sa<c>__a``, ... for core ``c`` and ``t<k>__cmd``,
``t<k>__vin``, ... for tile ``k`` — plus a ``busy`` vector (bit ``c``: core ``c``, bit
``N + k``: tile ``k``).

Tile ``k`` is built with device seed ``tile.seed + k`` (its own programming errors,
faults and read noise), as :mod:`hw.placement` places matrices on physical blocks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from amaranth import Cat, ClockDomain, ClockSignal, Const, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from .manycore import ManycoreConfig
from .systolic import SystolicCore

__all__ = ["Chip", "check_chip", "generate_chip", "chip_sources", "control_file", "tile_module",
           "MAX_TILES", "MAX_CORES"]

#: Blocks (ReramTile instances) and systolic cores the RTL chip may hold: the
#: co-simulation harness gives each of its MAX_CORES + MAX_TILES command channels two
#: header words (cosim.driver.PROGRAM_BASE).
MAX_TILES = 31
MAX_CORES = 16


def check_chip(cfg: ManycoreConfig) -> None:
    """The RTL chip top implements up to :data:`MAX_CORES` systolic cores and up to
    :data:`MAX_TILES` blocks (one ``ReramTile`` each); a manycore beyond that is costed,
    not generated."""
    if not isinstance(cfg, ManycoreConfig):
        raise TypeError(f"the chip takes a ManycoreConfig, not {cfg!r}")
    if not 1 <= cfg.systolic_cores <= MAX_CORES:
        raise ValueError(f"the RTL chip holds 1..{MAX_CORES} systolic cores (harness "
                         f"channels); ManycoreConfig.systolic_cores is {cfg.systolic_cores}")
    if not 1 <= cfg.blocks <= MAX_TILES:
        raise ValueError(f"the RTL chip holds 1..{MAX_TILES} ReRAM blocks (harness channels); "
                         f"this ManycoreConfig has {cfg.blocks} ({cfg.reram_cores} cores x "
                         f"{cfg.tiles_per_core} tiles x {cfg.blocks_per_tile} blocks)")


def tile_module(cfg: ManycoreConfig) -> str:
    """Module name of the chip's tile (one module for all K tiles: the seed is a port)."""
    return dataclasses.replace(cfg.tile, seed=0).name.removesuffix("_s0").replace("_s0_", "_") + "_sp"


class Chip(wiring.Component):
    """``cores`` systolic cores (``sa0`` ...) and ``tiles`` ReRAM tiles (``t0`` ...), each
    behind its own command channel; see the module docstring.

    The units are instances of separately generated modules (:func:`generate_chip`
    writes all three files): the systolic core ``cfg.systolic.name`` and one tile module
    :func:`tile_module` whose device seed is an input, so Verilator compiles each once
    however many the chip holds.

    Every tile's clock is gated: it runs only while the tile is busy, is offered a
    command or is in reset.

    Ports
    -----
    sa<c> : the :class:`hw.systolic.SystolicCore` ports of core ``c`` (cmd, a, b, result, busy)
    t<k> : the :class:`hw.reram.ReramTile` ports of tile ``k`` (cmd, w, vin, vout, stats, busy)
    busy : Out(cores + tiles)
    """

    def __init__(self, cfg: ManycoreConfig):
        check_chip(cfg)
        from .reram.tile import TileSignature
        from .systolic.core import CoreSignature
        self.cfg = cfg
        self._core_sig = CoreSignature(cfg.systolic)
        self._tile_sig = TileSignature(cfg.tile)                          # no seed port
        members = {f"sa{c}": Out(self._core_sig) for c in range(cfg.systolic_cores)}
        for k in range(cfg.blocks):
            members[f"t{k}"] = Out(self._tile_sig)
        members["busy"] = Out(cfg.systolic_cores + cfg.blocks)
        super().__init__(members)

    @property
    def units(self) -> list[str]:
        """Port prefixes of the units, in ``busy`` order: the cores, then the tiles."""
        return ([f"sa{c}" for c in range(self.cfg.systolic_cores)]
                + [f"t{k}" for k in range(self.cfg.blocks)])

    @staticmethod
    def _ports(iface) -> dict:
        ports = {}
        for path, member, value in iface.signature.flatten(iface):
            name = "__".join(str(p) for p in path)
            ports[("i_" if member.flow == wiring.In else "o_") + name] = value
        return ports

    def elaborate(self, platform):
        m = Module()
        # Clock gating: a tile's clock runs only while it is busy, is offered a command or
        # is in reset. An idle tile's state cannot change (its idle state only acts on
        # ``cmd.valid``), so gating changes no cycle and no result; it saves the idle
        # tiles' clock power and, in simulation, their evaluation. The enable is latched
        # while the clock is low (a latch-based integrated clock gate), so the gated clock
        # has no glitch when the enable changes after a rising edge. The systolic cores
        # are not gated: they are busy for much of a training step, and gating them made
        # the demo's co-simulation 11 % slower (206.7 s -> 231.5 s of harness runs).
        m.domains.icg = ClockDomain("icg", clk_edge="neg", reset_less=True, local=True)
        m.d.comb += ClockSignal("icg").eq(ClockSignal())
        for c in range(self.cfg.systolic_cores):
            m.submodules[f"sa{c}"] = Instance(self.cfg.systolic.name, i_clk=ClockSignal(),
                                              i_rst=ResetSignal(), **self._ports(getattr(self, f"sa{c}")))
        for k in range(self.cfg.blocks):
            iface = getattr(self, f"t{k}")
            enable = Signal(name=f"t{k}_clk_en")
            gated = Signal(name=f"t{k}_clk")
            m.d.icg += enable.eq(iface.busy | iface.cmd.valid | ResetSignal())
            m.d.comb += gated.eq(ClockSignal() & enable)
            m.submodules[f"t{k}"] = Instance(
                tile_module(self.cfg), i_clk=gated, i_rst=ResetSignal(),
                **self._ports(iface), i_seed=Const(self.cfg.physical_tile(k).seed, 32))
        m.d.comb += self.busy.eq(Cat(*(getattr(self, u).busy for u in self.units)))
        return m


def control_file(cfg: ManycoreConfig, out_dir) -> Path:
    """The chip's Verilator control file (``<top>.vlt``): the tile module is a
    hierarchical block, so with ``--hierarchical`` it is verilated and compiled once,
    however many instances the chip has."""
    path = Path(out_dir) / f"{cfg.name}.vlt"
    text = f'`verilator_config\nhier_block -module "{tile_module(cfg)}"\n'
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def chip_sources(cfg: ManycoreConfig, out_dir) -> list:
    """What a simulator build of the chip reads: :func:`generate_chip`'s modules and the
    control file, the top's Verilog last but one."""
    paths = generate_chip(cfg, out_dir)
    return [*paths, control_file(cfg, out_dir)]


def generate_chip(cfg: ManycoreConfig, out_dir) -> list:
    """Write the chip's three modules (systolic core, tile, chip top) as ``.v`` + ``.json``
    under ``out_dir``; return the Verilog paths, top last."""
    from .reram.tile import ReramTile
    from .verilog import generate
    check_chip(cfg)
    sa, _ = generate(SystolicCore(cfg.systolic), cfg.systolic.name, out_dir,
                     config=cfg.systolic.to_dict())
    tile, _ = generate(ReramTile(cfg.tile, seed_port=True), tile_module(cfg), out_dir,
                       config={**cfg.tile.to_dict(), "seed": "port"})
    top, _ = generate(Chip(cfg), cfg.name, out_dir, config=cfg.to_dict())
    return [sa, tile, top]
