"""`ManycoreConfig`: the one description of the accelerator the low-parameter phase runs on.

HpT's low-parameter phase runs on a 3D heterogeneous manycore: ReRAM tiers holding every
frozen base weight over a systolic tier that runs the trainable products and the dynamic
attention products, with a vector unit per systolic core for the element-wise work, all
joined by vertical links and a network on chip. This one frozen, validated object
describes that machine; the gateware's chip top (:mod:`hw.chip`), the functional and RTL
devices, the placement (:mod:`hw.placement`) and the cost model (:mod:`sw.cost.estimate`) all take
it.

Vocabulary
----------
* a **crossbar** is one ``tile.rows x tile.cols`` array of cells holding one weight
  slice (``tile.cell_bits`` bits of every weight);
* a **block** is what one :class:`~hw.reram.TileConfig` describes and one ``ReramTile``
  implements: ``tile.crossbars`` crossbars (one per weight slice, two with differential
  encoding) holding one ``rows x cols`` block of signed
  weights, with its DACs and ADCs. Placement maps matrices to blocks; physical block ``k``
  has the device seed ``tile.seed + k``;
* a **ReRAM tile** holds ``crossbars_per_tile`` crossbars, i.e.
  ``crossbars_per_tile // tile.crossbars`` blocks; a **ReRAM core** holds ``tiles_per_core``
  tiles; the chip has ``reram_cores`` of them.

Presets (:func:`preset`): ``atleus`` (the system HpT runs on, after Atleus, Dhingra,
Doppa, Pande, IEEE TCAD 2025, arXiv 2501.09588), ``demo`` (what ``make demo``
co-simulates) and ``small`` (the one-core, seven-tile chip this project simulated before
the manycore).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

from .reram import TileConfig
from .systolic import SystolicConfig

__all__ = ["VectorUnitConfig", "LinkConfig", "ManycoreConfig", "PRESETS", "preset",
           "VECTOR_PRIMITIVES"]

ATLEUS = "Atleus (Dhingra, Doppa, Pande, IEEE TCAD 2025, arXiv 2501.09588)"

#: Primitive operations a vector unit may offer, per element and lane.
VECTOR_PRIMITIVES = ("add", "mul", "cmp", "exp", "reciprocal", "rsqrt")


def _check_int(owner, name, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}.{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{owner}.{name} must be {rng}, not {value}")


def _check_pos(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}.{name} must be a positive number, not {value!r}")


@dataclass(frozen=True)
class VectorUnitConfig:
    """The element-wise unit beside each systolic core: softmax, LayerNorm, activations,
    dropout, residual and bias adds, the loss and AdamW run here (their numerics stay
    float on the host; the trace counts their elements per kind, the cost model prices
    them with these numbers).

    Attributes
    ----------
    lanes:
        Elements processed per cycle per unit, for one primitive (assumption: 32 fp32
        lanes, the width of Gemmini's / a TPU VPU row at this array size).
    ops:
        Primitives offered (:data:`VECTOR_PRIMITIVES`); a kind of work that needs one
        that is missing cannot be mapped (error in the cost model).
    cycles:
        Cycles per element per lane for each primitive, as ``((name, cycles), ...)``
        (assumption: add/mul/compare pipelined at 1; exp, reciprocal and rsqrt by a
        4-cycle polynomial/Newton iteration).
    """
    lanes: int = 32
    ops: tuple = VECTOR_PRIMITIVES
    cycles: tuple = (("add", 1), ("mul", 1), ("cmp", 1), ("exp", 4), ("reciprocal", 4),
                     ("rsqrt", 4))

    def __post_init__(self):
        _check_int("VectorUnitConfig", "lanes", self.lanes, 1, 4096)
        object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "cycles", tuple(tuple(c) for c in self.cycles))
        for op in self.ops:
            if op not in VECTOR_PRIMITIVES:
                raise ValueError(f"VectorUnitConfig.ops: unknown primitive {op!r}; known: "
                                 f"{', '.join(VECTOR_PRIMITIVES)}")
        cyc = dict(self.cycles)
        for op in self.ops:
            if op not in cyc:
                raise ValueError(f"VectorUnitConfig.cycles has no entry for {op!r}")
            _check_pos("VectorUnitConfig", f"cycles[{op}]", cyc[op])

    def cycles_of(self, primitive: str) -> float:
        if primitive not in self.ops:
            raise ValueError(f"the vector unit does not offer {primitive!r} "
                             f"(VectorUnitConfig.ops = {', '.join(self.ops)})")
        return dict(self.cycles)[primitive]


@dataclass(frozen=True)
class LinkConfig:
    """On-chip links: vertical links (TSVs) between the ReRAM tiers and the systolic tier,
    and the network on chip within a tier; plus the host link used only at the switch
    (weights) and once per batch (inputs and targets).

    Attributes (units in the names)
    -------------------------------
    vertical_bw_bytes_s:
        Aggregate bandwidth of the vertical links (assumption: 16 ReRAM cores x one
        128-bit TSV bundle at 1 GHz = 256 GB/s; TSV bundles of this width are what 3D
        manycore NoC studies assume).
    noc_bw_bytes_s:
        Aggregate NoC bandwidth available to one layer's activations (assumption: 16
        routers x 32 B/cycle at 1 GHz = 512 GB/s).
    e_vertical_pj_bit:
        Energy per bit over a vertical link (assumption 0.05 pJ/bit; TSV figures in the
        literature are 0.01-0.1 pJ/bit).
    e_noc_pj_bit_hop:
        Energy per bit per NoC hop, router and wire (assumption 0.5 pJ/bit/hop, ORION
        2.0-class 32 nm router estimates are 0.2-1).
    hops:
        Average NoC hops an activation travels (a 4x4 mesh under uniform traffic: 2.67;
        rounded up to 3).
    host_bw_bytes_s, e_host_pj_byte:
        Host link (PCIe 4.0 x16, 32 GB/s) and the energy of a byte through off-chip DRAM
        (Horowitz, ISSCC 2014: 1.3 nJ per 64-bit access -> 162.5 pJ/B).
    """
    vertical_bw_bytes_s: float = 256e9
    noc_bw_bytes_s: float = 512e9
    e_vertical_pj_bit: float = 0.05
    e_noc_pj_bit_hop: float = 0.5
    hops: float = 3.0
    host_bw_bytes_s: float = 32e9
    e_host_pj_byte: float = 162.5

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check_pos("LinkConfig", f.name, getattr(self, f.name))

    def onchip_pj_per_byte(self) -> float:
        """One byte from a ReRAM tier to a systolic core (or back): a vertical link plus
        ``hops`` NoC hops."""
        return 8 * (self.e_vertical_pj_bit + self.hops * self.e_noc_pj_bit_hop)

    def onchip_seconds(self, nbytes: float) -> float:
        """Bytes over the slower of the two link kinds (they are pipelined)."""
        return nbytes / min(self.vertical_bw_bytes_s, self.noc_bw_bytes_s)


@dataclass(frozen=True)
class ManycoreConfig:
    """The accelerator: ReRAM cores x tiles x crossbars, N systolic cores each with a vector
    unit, links and the digital clock. See the module docstring for the vocabulary.

    Attributes
    ----------
    tile:
        Every block's :class:`TileConfig` (crossbar size, cell bits, DAC/ADC, device).
    systolic:
        Every systolic core's :class:`SystolicConfig`.
    reram_cores, tiles_per_core, crossbars_per_tile:
        The ReRAM hierarchy. ``crossbars_per_tile`` must hold at least one block
        (``tile.crossbars`` crossbars).
    systolic_cores:
        Systolic cores (each with one vector unit).
    vector, links:
        :class:`VectorUnitConfig` and :class:`LinkConfig`.
    clock_hz:
        Clock of the digital tier (systolic cores, vector units), Hz.
    replication:
        Copies of every frozen matrix the placement makes, as far as the spare capacity
        allows (``None``: as many as fit). Copies split a batch's input vectors.
    """
    tile: TileConfig = field(default_factory=TileConfig)
    systolic: SystolicConfig = field(default_factory=SystolicConfig)
    reram_cores: int = 1
    tiles_per_core: int = 7
    crossbars_per_tile: int = 4
    systolic_cores: int = 1
    vector: VectorUnitConfig = field(default_factory=VectorUnitConfig)
    links: LinkConfig = field(default_factory=LinkConfig)
    clock_hz: float = 1e9
    replication: int | None = 1

    def __post_init__(self):
        if not isinstance(self.tile, TileConfig):
            raise TypeError(f"ManycoreConfig.tile must be a TileConfig, not {self.tile!r}")
        if not isinstance(self.systolic, SystolicConfig):
            raise TypeError(f"ManycoreConfig.systolic must be a SystolicConfig, "
                            f"not {self.systolic!r}")
        if not isinstance(self.vector, VectorUnitConfig):
            raise TypeError(f"ManycoreConfig.vector must be a VectorUnitConfig, not {self.vector!r}")
        if not isinstance(self.links, LinkConfig):
            raise TypeError(f"ManycoreConfig.links must be a LinkConfig, not {self.links!r}")
        _check_int("ManycoreConfig", "reram_cores", self.reram_cores, 1, 4096)
        _check_int("ManycoreConfig", "tiles_per_core", self.tiles_per_core, 1, 4096)
        _check_int("ManycoreConfig", "crossbars_per_tile", self.crossbars_per_tile, 1, 65536)
        _check_int("ManycoreConfig", "systolic_cores", self.systolic_cores, 1, 4096)
        _check_pos("ManycoreConfig", "clock_hz", self.clock_hz)
        if self.replication is not None:
            _check_int("ManycoreConfig", "replication", self.replication, 1)
        if self.crossbars_per_tile < self.tile.crossbars:
            raise ValueError(f"ManycoreConfig.crossbars_per_tile ({self.crossbars_per_tile}) "
                             f"cannot hold one block: a {self.tile.weight_bits}-bit weight in "
                             f"{self.tile.cell_bits}-bit cells, {self.tile.encoding} encoding, "
                             f"takes {self.tile.crossbars} crossbars")

    @classmethod
    def single(cls, systolic: SystolicConfig, tile: TileConfig, tiles: int,
               **changes) -> "ManycoreConfig":
        """One systolic core (``systolic_cores=N`` in ``changes``: N) and one ReRAM core of
        ``tiles`` tiles holding one block each: the shape of the RTL chip (:mod:`hw.chip`)."""
        if not isinstance(tile, TileConfig):
            raise TypeError(f"ManycoreConfig.tile must be a TileConfig, not {tile!r}")
        kw = dict(reram_cores=1, tiles_per_core=tiles, crossbars_per_tile=tile.crossbars,
                  systolic_cores=1)
        return cls(tile=tile, systolic=systolic, **{**kw, **changes})

    # ---- capacity ----------------------------------------------------------------------
    @property
    def blocks_per_tile(self) -> int:
        return self.crossbars_per_tile // self.tile.crossbars

    @property
    def reram_tiles(self) -> int:
        return self.reram_cores * self.tiles_per_core

    @property
    def blocks(self) -> int:
        """Weight blocks the chip holds (``TileConfig`` instances): the placement's capacity."""
        return self.reram_tiles * self.blocks_per_tile

    @property
    def crossbars(self) -> int:
        return self.reram_tiles * self.crossbars_per_tile

    def tile_grid(self, shape) -> tuple[int, int]:
        """Blocks a frozen ``[in, out]`` matrix needs: (row blocks, column blocks)."""
        return -(-shape[0] // self.tile.rows), -(-shape[1] // self.tile.cols)

    def physical_tile(self, k: int) -> TileConfig:
        """The configuration of physical block ``k`` (its own device seed)."""
        return self.tile.physical(k)

    def tile_of_block(self, k: int) -> int:
        return k // self.blocks_per_tile

    # ---- names and serialisation -------------------------------------------------------
    @property
    def name(self) -> str:
        """Verilog module / build-directory name of the RTL chip: unique per what the RTL
        implements (core, block configuration, number of blocks), so changing a cost-only
        field (links, clock, vector unit, replication) does not rebuild it."""
        rtl = {"systolic": self.systolic.to_dict(), "tile": self.tile.to_dict(),
               "tiles": self.blocks, "cores": self.systolic_cores}
        h = hashlib.sha1(json.dumps(rtl, sort_keys=True).encode()).hexdigest()[:10]
        cores = "" if self.systolic_cores == 1 else f"{self.systolic_cores}x"
        return (f"chip_sa{cores}{self.systolic.rows}x{self.systolic.cols}"
                f"_t{self.blocks}x{self.tile.rows}x{self.tile.cols}_{h}")

    def to_dict(self) -> dict:
        return {"tile": self.tile.to_dict(), "systolic": self.systolic.to_dict(),
                "reram_cores": self.reram_cores, "tiles_per_core": self.tiles_per_core,
                "crossbars_per_tile": self.crossbars_per_tile,
                "systolic_cores": self.systolic_cores,
                "vector": {"lanes": self.vector.lanes, "ops": list(self.vector.ops),
                           "cycles": [list(c) for c in self.vector.cycles]},
                "links": dataclasses.asdict(self.links), "clock_hz": self.clock_hz,
                "replication": self.replication}

    @classmethod
    def from_dict(cls, d: dict) -> "ManycoreConfig":
        if "tiles" in d and "reram_cores" not in d:
            # a run folder of the one-core chip (HardwareConfig / ChipConfig): one block
            # per tile, as many tiles as it said (unlimited then: enough for Q and V)
            return cls.single(SystolicConfig.from_dict(d["systolic"]),
                              TileConfig.from_dict(d["tile"]), d["tiles"] or 4096)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"ManycoreConfig has no field(s) {sorted(unknown)}")
        kw = dict(d)
        kw["tile"] = TileConfig.from_dict(d["tile"])
        kw["systolic"] = SystolicConfig.from_dict(d["systolic"])
        if "vector" in d:
            kw["vector"] = VectorUnitConfig(**d["vector"])
        if "links" in d:
            kw["links"] = LinkConfig(**d["links"])
        return cls(**kw)

    def replace(self, **changes) -> "ManycoreConfig":
        """A copy with fields changed; nested fields by dotted name (``tile.adc_bits``,
        ``systolic.rows``, ``links.hops``, ``vector.lanes``). An unknown name is an error
        naming it."""
        top, nested = {}, {}
        for name, value in changes.items():
            head, dot, rest = name.partition(".")
            if dot:
                if head not in ("tile", "systolic", "vector", "links"):
                    raise ValueError(f"unknown ManycoreConfig field {name!r}")
                nested.setdefault(head, {})[rest] = value
            else:
                if head not in {f.name for f in dataclasses.fields(self)}:
                    raise ValueError(f"unknown ManycoreConfig field {name!r}")
                top[head] = value
        for head, fields_ in nested.items():
            sub = getattr(self, head)
            names = {f.name for f in dataclasses.fields(sub)}
            for k in fields_:
                if k not in names:
                    raise ValueError(f"unknown ManycoreConfig field {head}.{k!r}")
            top[head] = (sub.changed(**fields_) if head == "tile"      # derived defaults follow
                         else dataclasses.replace(sub, **fields_))
        return dataclasses.replace(self, **top)


def _atleus() -> ManycoreConfig:
    # 128x128 crossbars, 2 bits per cell, 1-bit DACs; 16 ReRAM cores x 16 tiles x 96
    # crossbars; a 128x32-PE systolic array per systolic-tier core (Atleus, as cited in
    # issue 12; the full text was not reachable in this session to re-check each number).
    # ADC: Atleus (like ISAAC) uses 8 bits with ISAAC's weight-flipping encoding; this
    # tile has plain offset encoding, which needs 9 bits for the same lossless column sum
    # at 128 rows of 2-bit cells (README fidelity table), so the preset uses 9 and the cost
    # model charges 9-bit conversions (the sensitivity table shows 8).
    return ManycoreConfig(
        tile=TileConfig(rows=128, cols=128, cell_bits=2, weight_bits=8, input_bits=8,
                        dac_bits=1, adc_bits=9),
        systolic=SystolicConfig(rows=128, cols=32, in_width=8),
        reram_cores=16, tiles_per_core=16, crossbars_per_tile=96,
        systolic_cores=16, replication=None)


def _demo() -> ManycoreConfig:
    # make demo: one 16x16 core and sixteen ideal 64x64 blocks, every frozen matrix of the
    # tiny preset's two layers (Q, K, V, O: one block each; FFN fc1 and fc2: two each).
    # The tiles sum 8 crossbar rows per cycle (TileConfig.rows_per_cycle) and the chip
    # gates idle tiles' clocks, so the 16 tiles build and co-simulate within the demo's
    # budget.
    return ManycoreConfig.single(SystolicConfig(),
                                 TileConfig(rows=64, cols=64, rows_per_cycle=8).ideal(), 16)


def _small() -> ManycoreConfig:
    # the chip of stops 8-10: one 16x16 core, at most 7 default 128x128 tiles, one copy
    return ManycoreConfig.single(SystolicConfig(), TileConfig(), 7)


PRESETS = {"atleus": _atleus, "demo": _demo, "small": _small}


def preset(name: str, **changes) -> ManycoreConfig:
    """A named manycore (``atleus``, ``demo``, ``small``), with dotted-name changes."""
    if name not in PRESETS:
        raise ValueError(f"unknown manycore preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name]()
    return cfg.replace(**changes) if changes else cfg
