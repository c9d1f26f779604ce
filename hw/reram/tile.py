"""ReRAM tile controller with a behavioural crossbar, DAC/ADC and wear counters."""

from __future__ import annotations

from amaranth import Const, Module, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .command import STATS_LAYOUT, TileOp, conductance_row_layout, tile_command_layout
from .config import TileConfig
from .datapath import CrossbarDatapath
from .program import WriteVerify
from .stats import TileStats

__all__ = ["ReramTile", "TileSignature"]


class TileSignature(wiring.Signature):
    """The ports of a :class:`ReramTile` of configuration ``cfg`` (``seed_port``: the device
    seed as an input), readable without building the tile."""

    def __init__(self, cfg: TileConfig, *, seed_port: bool = False):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        self.cfg, self.seed_port = cfg, seed_port
        n = max(cfg.rows, cfg.cols)
        members = {
            "cmd": In(stream.Signature(tile_command_layout(cfg))),
            "w": In(stream.Signature(data.ArrayLayout(signed(cfg.weight_bits), cfg.cols))),
            "vin": In(stream.Signature(data.ArrayLayout(signed(cfg.input_bits), n))),
            "vout": Out(stream.Signature(data.ArrayLayout(signed(cfg.out_width), n))),
            "stats": Out(stream.Signature(STATS_LAYOUT)),
            "busy": Out(1),
        }
        if seed_port:
            # the device seed as an input held constant (instead of ``cfg.seed`` built in),
            # so that several tiles of a chip are one module with different seeds
            members["seed"] = In(32)
        super().__init__(members)

    def __eq__(self, other):
        return (type(other) is type(self) and other.cfg == self.cfg
                and other.seed_port == self.seed_port)

    def __hash__(self):
        return hash((type(self), self.cfg, self.seed_port))


class ReramTile(wiring.Component):
    """One ReRAM tile: a behavioural crossbar of ``rows x cols`` weights, bit-sliced over
    ``slices`` cells, with its programming controller, bit-serial DACs, ADCs and
    shift-add back end. Encoding and numerics: :class:`TileConfig`; bit-exact model:
    :class:`sw.golden.reram.ReramModel`.

    The crossbar state is a row-major conductance memory (one word = one crossbar row,
    all columns and slices, :func:`conductance_row_layout`), banked ``rows_per_cycle``
    ways and held here, around three components with their own signatures:
    :class:`~hw.reram.program.WriteVerify` programs a weight row into codes and pulse
    counts, :class:`~hw.reram.datapath.CrossbarDatapath` turns input vectors into outputs
    from the banks (DACs, analog sums of ``rows_per_cycle`` rows per cycle, ADCs,
    shift-add), and :class:`~hw.reram.stats.TileStats` keeps the wear memory and the
    counters. This module's command FSM connects them. Everything runs in the RTL without
    Python. Latencies: :meth:`TileConfig.program_latency`, :meth:`TileConfig.mvm_latency`,
    :meth:`TileConfig.mvm_t_latency`, exposed below.

    Ports
    -----
    cmd : In(stream of ``tile_command_layout(cfg)``)
    w : In(stream of ``ArrayLayout(signed(weight_bits), cols)``), one weight row each
    vin : In(stream of ``ArrayLayout(signed(input_bits), max(rows, cols))``)
    vout : Out(stream of ``ArrayLayout(signed(out_width), max(rows, cols))``)
    stats : Out(stream of ``STATS_LAYOUT``)
    busy : Out(1)
    """

    def __init__(self, cfg: TileConfig, *, seed_port: bool = False):
        if not isinstance(cfg, TileConfig):
            raise TypeError(f"cfg must be a TileConfig, not {cfg!r}")
        refusal = cfg.rtl_refusal()
        if refusal:
            raise ValueError(refusal)
        self.cfg = cfg
        self.seed_port = seed_port
        super().__init__(TileSignature(cfg, seed_port=seed_port))

    def program_latency(self, count):
        return self.cfg.program_latency(count)

    def mvm_latency(self, count):
        return self.cfg.mvm_latency(count)

    def mvm_t_latency(self, count):
        return self.cfg.mvm_t_latency(count)

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        P = c.rows_per_cycle                               # rows read per cycle
        pb = P.bit_length() - 1                            # row = group * P + bank
        m.submodules.program = prog = WriteVerify(c)
        m.submodules.datapath = dp = CrossbarDatapath(c)
        m.submodules.stats = stats = TileStats(c)
        seed = self.seed if self.seed_port else Const(c.seed, 32)
        m.d.comb += [prog.seed.eq(seed), dp.seed.eq(seed)]
        row = Signal(range(c.rows + 1))                    # the row being programmed
        left = Signal(16)                                  # rows or vectors still to go

        # ---- the crossbar: conductance codes, one word per crossbar row ----------------
        # Banked P ways (row r in bank r % P at address r // P), so one read gives the P
        # rows of a row group; rows past the last are never written and read as zero
        # conductance. (At least 2 deep: a 1-deep memory would have a zero-width address.)
        for b in range(P):
            bank = memory.Memory(shape=conductance_row_layout(c), depth=max(c.row_groups, 2),
                                 init=[])
            m.submodules[f"g_mem{b}" if P > 1 else "g_mem"] = bank
            wr, rd = bank.write_port(), bank.read_port()
            m.d.comb += [wr.addr.eq(row >> pb), wr.data.eq(prog.cell.payload.g),
                         wr.en.eq(prog.cell.valid & (row[:pb] == b if P > 1 else 1)),
                         rd.addr.eq(dp.group), dp.g[b].eq(rd.data)]

        # ---- control ------------------------------------------------------------------
        m.d.comb += [stats.row.eq(row), stats.pulses.eq(prog.cell.payload.pulses),
                     stats.busy.eq(self.busy), prog.row.eq(row)]
        transpose = Signal()
        m.d.comb += dp.transpose.eq(transpose)
        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                cmd = self.cmd.payload
                with m.If(self.cmd.valid):
                    m.d.sync += [row.eq(cmd.addr), left.eq(cmd.count)]
                    with m.Switch(cmd.op):
                        with m.Case(TileOp.PROGRAM):
                            with m.If(cmd.count != 0):
                                m.next = "PROGRAM"
                        with m.Case(TileOp.MVM, TileOp.MVM_T):
                            m.d.sync += transpose.eq(cmd.op == TileOp.MVM_T)
                            with m.If(cmd.count != 0):
                                m.next = "MVM"
                        with m.Case(TileOp.READ_STATS):
                            m.d.comb += stats.snapshot.eq(1)
                            m.next = "STATS"
                        with m.Case(TileOp.RESET_STATS):
                            m.d.comb += stats.clear.eq(1)

            with m.State("STATS"):
                m.d.comb += [self.busy.eq(1), self.stats.valid.eq(1),
                             self.stats.payload.eq(stats.stats)]
                with m.If(self.stats.ready):
                    m.next = "IDLE"

            with m.State("PROGRAM"):          # rows through write-verify into the crossbar
                m.d.comb += [self.busy.eq(1), prog.w.valid.eq(self.w.valid),
                             self.w.ready.eq(prog.w.ready), prog.w.payload.eq(self.w.payload),
                             prog.cell.ready.eq(1), stats.write.eq(prog.cell.valid)]
                with m.If(prog.cell.valid):
                    m.d.sync += [row.eq(row + 1), left.eq(left - 1)]
                    with m.If(left == 1):
                        m.next = "IDLE"

            with m.State("MVM"):              # vectors through the datapath
                m.d.comb += [self.busy.eq(1), dp.vin.valid.eq(self.vin.valid),
                             self.vin.ready.eq(dp.vin.ready), dp.vin.payload.eq(self.vin.payload),
                             self.vout.valid.eq(dp.vout.valid),
                             self.vout.payload.eq(dp.vout.payload),
                             dp.vout.ready.eq(self.vout.ready)]
                with m.If(dp.vout.valid & self.vout.ready):
                    m.d.comb += stats.vector.eq(1)
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "IDLE"
        return m
