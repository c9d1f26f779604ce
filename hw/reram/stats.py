"""The tile's statistics: per-cell wear and the counters of ``READ_STATS``."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .command import STATS_LAYOUT, programmed_row_layout
from .config import TileConfig
from .draws import tree_sum

__all__ = ["TileStats"]


class TileStats(wiring.Component):
    """Wear counters (pulses per cell, one memory word per crossbar row) and the tile's
    statistics: busy cycles, total pulses, the most pulses any cell took, cells that
    crossed ``endurance`` and vectors converted.

    Ports
    -----
    row : In(range(rows + 1)), the crossbar row being programmed; its wear is read one
        cycle later
    pulses : In(programmed row's ``pulses``), that row's pulses per cell
    write : In(1), add ``pulses`` to the row's wear and the counters (one cycle)
    vector : In(1), a vector was converted
    busy : In(1), the tile is busy this cycle
    snapshot : In(1), latch every counter into ``stats``
    clear : In(1), clear busy cycles, total pulses and vectors (``RESET_STATS``)
    stats : Out(``STATS_LAYOUT``), the last snapshot
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        super().__init__({
            "row": In(range(cfg.rows + 1)),
            "pulses": In(programmed_row_layout(cfg)["pulses"].shape),
            "write": In(1), "vector": In(1), "busy": In(1),
            "snapshot": In(1), "clear": In(1),
            "stats": Out(STATS_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        cells = c.cols * c.lanes
        m.submodules.wear_mem = wear_mem = memory.Memory(
            shape=data.ArrayLayout(unsigned(32), cells), depth=max(c.rows, 2), init=[])
        wear_wr, wear_rd = wear_mem.write_port(), wear_mem.read_port()
        m.d.comb += [wear_wr.addr.eq(self.row), wear_rd.addr.eq(self.row),
                     wear_wr.en.eq(self.write)]

        busy, total, mvms = Signal(48), Signal(48), Signal(48)
        most, over = Signal(32), Signal(32)
        new_wear, crossings = [], []
        for k in range(cells):
            old = wear_rd.data[k]
            nw = Signal(32, name=f"nw{k}")
            m.d.comb += [nw.eq(old + self.pulses[k]), wear_wr.data[k].eq(nw)]
            new_wear.append(nw)
            crossings.append((old <= c.endurance) & (nw > c.endurance))
        row_max = _tree_max(m, new_wear)

        m.d.sync += busy.eq(busy + self.busy)
        with m.If(self.write):
            m.d.sync += [total.eq(total + tree_sum(self.pulses[k] for k in range(cells))),
                         over.eq(over + tree_sum(crossings)),
                         most.eq(Mux(row_max > most, row_max, most))]
        with m.If(self.vector):
            m.d.sync += mvms.eq(mvms + 1)
        with m.If(self.snapshot):
            m.d.sync += [self.stats.busy_cycles.eq(busy), self.stats.total_pulses.eq(total),
                         self.stats.max_pulses.eq(most), self.stats.over_limit.eq(over),
                         self.stats.mvms.eq(mvms)]
        with m.If(self.clear):
            m.d.sync += [busy.eq(0), total.eq(0), mvms.eq(0)]
        return m


def _tree_max(m, values):
    """The largest of 32-bit ``values``, as a balanced tree of comparators."""
    level, n = list(values), 0
    while len(level) > 1:
        nxt = []
        for a in range(0, len(level) - 1, 2):
            mx = Signal(32, name=f"rowmax{n}")
            n += 1
            m.d.comb += mx.eq(Mux(level[a] > level[a + 1], level[a], level[a + 1]))
            nxt.append(mx)
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return level[0]
