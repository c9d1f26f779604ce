"""Output-stationary systolic array: double-buffered scratchpads and output banks,
three engines (load, compute, read) behind one command stream."""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .command import Op, command_layout
from .config import SystolicConfig

__all__ = ["SystolicCore", "CoreSignature"]


class CoreSignature(wiring.Signature):
    """The ports of a :class:`SystolicCore` of configuration ``cfg`` (readable without
    building the core: the chip declares its ports from it)."""

    def __init__(self, cfg: SystolicConfig):
        if not isinstance(cfg, SystolicConfig):
            raise TypeError(f"cfg must be a SystolicConfig, not {cfg!r}")
        self.cfg = cfg
        w, acc = signed(cfg.in_width), signed(cfg.acc_width)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(cfg))),
            "a": In(stream.Signature(data.ArrayLayout(w, cfg.rows))),
            "b": In(stream.Signature(data.ArrayLayout(w, cfg.cols))),
            "result": Out(stream.Signature(data.ArrayLayout(acc, cfg.cols))),
            "busy": Out(1),
        })

    def __eq__(self, other):
        return type(other) is type(self) and other.cfg == self.cfg

    def __hash__(self):
        return hash((type(self), self.cfg))


class SystolicCore(wiring.Component):
    """A ``rows x cols`` output-stationary systolic array with overlapped load, compute
    and drain.

    Data path
    ---------
    ``a`` and ``b`` are streams of whole vectors (one per cycle): an ``a`` vector is one
    column of an A tile (``rows`` operands), a ``b`` vector one row of a B tile (``cols``
    operands). ``LOAD_*`` commands write them into one of two ``k_depth``-deep scratchpad
    banks. ``COMPUTE`` reads one entry of a bank per cycle; row ``i`` of A enters the grid
    ``i`` cycles late and column ``j`` of B ``j`` cycles late (the skew), so PE ``(i, j)``
    sees ``A[i, k]`` and ``B[k, j]`` together at cycle ``k + i + j`` and adds their
    product to its accumulator. A *first* flag travels with the k = 0 wavefront and clears
    each accumulator as it passes, unless the command accumulates; with ``last`` set, a
    *capture* flag travels with the final wavefront and copies each PE's final sum into
    output bank 0 or 1. ``READ`` returns output-bank rows through ``result``, one
    ``cols``-wide row per cycle.

    Overlap
    -------
    Three engines (load, compute, read) work at once, so the next K chunk loads into the
    other scratchpad bank while this one computes, the next tile's wavefronts follow this
    tile's without a drain (the capture flags carry the results out of the way), and the
    previous tile is read from its output bank meanwhile. Commands are accepted in order;
    the interlocks (engine busy, bank in use, capture not yet complete, a READ still
    reading the bank a ``last`` COMPUTE will overwrite) and the resulting cycle counts are
    :class:`hw.systolic.CoreTiming`, which the tests compare with this RTL.

    Ports
    -----
    cmd : In(stream of ``command_layout(cfg)``)
    a : In(stream of ``ArrayLayout(signed(in_width), rows)``)
    b : In(stream of ``ArrayLayout(signed(in_width), cols)``)
    result : Out(stream of ``ArrayLayout(signed(acc_width), cols)``)
    busy : Out(1), high while a command executes.
    """

    def __init__(self, cfg: SystolicConfig):
        if not isinstance(cfg, SystolicConfig):
            raise TypeError(f"cfg must be a SystolicConfig, not {cfg!r}")
        self.cfg = cfg
        super().__init__(CoreSignature(cfg))

    @property
    def drain_cycles(self) -> int:
        """Cycles from the last scratchpad read until PE (rows-1, cols-1) has its sum."""
        return self.cfg.rows + self.cfg.cols - 1

    def elaborate(self, platform):
        """The scratchpads, the three engines and the dispatcher; the PE grid is
        :meth:`_array`. Longer than most functions here: the engines and the dispatcher
        share their interlock signals, and each interlock reads best next to the engine
        it guards."""
        m = Module()
        cfg = self.cfg
        R, C, W = cfg.rows, cfg.cols, cfg.in_width

        # ---- scratchpads: two banks of A and of B --------------------------------------
        a_wr, b_wr, a_rd, b_rd = [], [], [], []
        for bank in (0, 1):
            a_mem = memory.Memory(shape=data.ArrayLayout(signed(W), R), depth=cfg.k_depth,
                                  init=[])
            b_mem = memory.Memory(shape=data.ArrayLayout(signed(W), C), depth=cfg.k_depth,
                                  init=[])
            m.submodules[f"a_mem{bank}"], m.submodules[f"b_mem{bank}"] = a_mem, b_mem
            a_wr.append(a_mem.write_port())
            b_wr.append(b_mem.write_port())
            a_rd.append(a_mem.read_port())
            b_rd.append(b_mem.read_port())

        cmd = self.cmd.payload
        drain_n = R + C - 1          # cycles from a wavefront's issue until it passed every PE

        # ---- load engine: one vector per cycle into scratchpad bank l_bank -------------
        l_left = Signal(cfg.count_width)
        l_ptr = Signal(cfg.addr_width)
        l_bank, l_a, l_b = Signal(), Signal(), Signal()
        l_busy = l_left != 0
        go = l_busy & (self.a.valid | ~l_a) & (self.b.valid | ~l_b)
        m.d.comb += [self.a.ready.eq(l_a & go), self.b.ready.eq(l_b & go)]
        for bank in (0, 1):
            m.d.comb += [
                a_wr[bank].addr.eq(l_ptr), a_wr[bank].data.eq(self.a.payload),
                a_wr[bank].en.eq(l_a & go & (l_bank == bank)),
                b_wr[bank].addr.eq(l_ptr), b_wr[bank].data.eq(self.b.payload),
                b_wr[bank].en.eq(l_b & go & (l_bank == bank)),
            ]
        with m.If(go):
            m.d.sync += [l_ptr.eq(l_ptr + 1), l_left.eq(l_left - 1)]

        # ---- compute engine: one scratchpad entry per cycle into the array ---------------
        c_left = Signal(cfg.count_width)
        c_ptr = Signal(cfg.addr_width)
        c_bank, c_first, c_last, c_obank = Signal(), Signal(), Signal(), Signal()
        # The array's data registers (skew, PE operands, accumulators, output banks) have
        # no reset, which keeps them cheap to simulate; reset is kept observably exact by
        # two flags instead: the first COMPUTE after a reset clears the accumulators even
        # if it accumulates (the k = 0 wavefront overtakes nothing, so whatever the
        # registers held is dropped), and an output bank reads as zeros until a tile has
        # been captured into it.
        fresh = Signal(init=1)
        captured = Signal(2)
        c_busy = c_left != 0
        # the reads run ahead; the captures follow the last wavefront through the array
        r_left = Signal(cfg.count_width)
        r_ptr = Signal(cfg.addr_width)
        r_bank = Signal()
        r_busy = r_left != 0
        final = c_left == 1
        hold = final & c_last & r_busy & (r_bank == c_obank)   # output bank still being read
        issue = c_busy & ~hold
        feed_v = Signal()            # scratchpad data on the read ports is a valid wavefront
        feed_first = Signal()        # ... it is the k = 0 wavefront of a clearing COMPUTE
        feed_bank = Signal()         # ... read from this scratchpad bank
        feed_cap = [Signal(name=f"feed_cap{o}") for o in (0, 1)]  # ... it ends a tile
        d_cnt = Signal(range(drain_n + 1))                        # last wavefront in flight
        cap_cnt = [Signal(range(drain_n + 1), name=f"cap_cnt{o}") for o in (0, 1)]
        for bank in (0, 1):
            m.d.comb += [a_rd[bank].addr.eq(c_ptr), b_rd[bank].addr.eq(c_ptr)]
        m.d.sync += [feed_v.eq(0), feed_first.eq(0), feed_cap[0].eq(0), feed_cap[1].eq(0)]
        for cnt in [d_cnt] + cap_cnt:
            with m.If(cnt != 0):
                m.d.sync += cnt.eq(cnt - 1)
        with m.If(issue):
            m.d.sync += [c_ptr.eq(c_ptr + 1), c_left.eq(c_left - 1), c_first.eq(0),
                         feed_v.eq(1), feed_first.eq(c_first), feed_bank.eq(c_bank)]
            with m.If(final):
                m.d.sync += d_cnt.eq(drain_n)
                for o in (0, 1):
                    with m.If(c_last & (c_obank == o)):
                        m.d.sync += [feed_cap[o].eq(1), cap_cnt[o].eq(drain_n),
                                     captured[o].eq(1)]

        # ---- read engine: one output row per cycle from output bank r_bank ---------------
        m.d.comb += self.result.valid.eq(r_busy)
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += [r_ptr.eq(r_ptr + 1), r_left.eq(r_left - 1)]

        # ---- dispatcher: commands in order, each when its engine and banks are free -------
        idle = ~l_busy & ~c_busy & ~r_busy & (d_cnt == 0) & (cap_cnt[0] == 0) & (cap_cnt[1] == 0)
        m.d.comb += self.busy.eq(~idle)
        capturing = Mux(cmd.obank, cap_cnt[1] != 0, cap_cnt[0] != 0) \
            | (c_busy & c_last & (c_obank == cmd.obank))
        ok = Signal()
        with m.Switch(cmd.op):
            with m.Case(Op.LOAD_A, Op.LOAD_B, Op.LOAD_AB):
                m.d.comb += ok.eq(~l_busy & ~(c_busy & (c_bank == cmd.sbank)))
            with m.Case(Op.COMPUTE):
                m.d.comb += ok.eq(~c_busy & ~(l_busy & (l_bank == cmd.sbank)))
            with m.Case(Op.READ):
                m.d.comb += ok.eq(~r_busy & ~capturing)
            with m.Default():
                m.d.comb += ok.eq(1)
        m.d.comb += self.cmd.ready.eq((ok | (cmd.count == 0)) & (~cmd.fence | idle))
        with m.If(self.cmd.valid & self.cmd.ready & (cmd.count != 0)):
            with m.Switch(cmd.op):
                with m.Case(Op.LOAD_A, Op.LOAD_B, Op.LOAD_AB):
                    m.d.sync += [l_left.eq(cmd.count), l_ptr.eq(cmd.addr), l_bank.eq(cmd.sbank),
                                 l_a.eq(cmd.op != Op.LOAD_B), l_b.eq(cmd.op != Op.LOAD_A)]
                with m.Case(Op.COMPUTE):
                    m.d.sync += [c_left.eq(cmd.count), c_ptr.eq(cmd.addr), c_bank.eq(cmd.sbank),
                                 c_first.eq(~cmd.accumulate | fresh), c_last.eq(cmd.last),
                                 fresh.eq(0),
                                 c_obank.eq(cmd.obank)]
                with m.Case(Op.READ):
                    m.d.sync += [r_left.eq(cmd.count), r_ptr.eq(cmd.addr), r_bank.eq(cmd.obank)]

        out = self._array(m, feed_v, feed_bank, Cat(feed_first, feed_cap[0], feed_cap[1]),
                          [p.data for p in a_rd], [p.data for p in b_rd])

        # ---- result: one output-bank row per cycle ----------------------------------------
        with m.Switch(Cat(r_ptr, r_bank)):
            for o in (0, 1):
                for i in range(R):
                    with m.Case(i | (o << len(r_ptr))):
                        m.d.comb += self.result.payload.as_value().eq(
                            Mux(captured[o], Cat(*out[o][i]), 0))
        return m

    def _array(self, m, feed_v, feed_bank, flags, a_data, b_data):
        """The skewed operand feed and the ``rows x cols`` PE grid; returns the two output
        banks ``out[bank][i][j]``. ``feed_v``: the scratchpad words ``a_data[feed_bank]``,
        ``b_data[feed_bank]`` are a wavefront; ``flags``: its first (clear), capture into
        bank 0 and capture into bank 1 flags, which travel with A."""
        cfg = self.cfg
        R, C, W = cfg.rows, cfg.cols, cfg.in_width

        # ---- skew: row i of A and column j of B enter i (j) cycles late -----------------
        def skewed(value, delay, name):
            """Delay ``value`` by ``delay`` cycles."""
            for d in range(delay):
                v = Signal.like(value, name=f"{name}_d{d}", reset_less=True)
                m.d.sync += v.eq(value)
                value = v
            return value

        # Operand lanes. When a full product of two accumulator-wide values fits in 64
        # bits, operands travel sign-extended to acc_width and are multiplied unsigned:
        # the low acc_width bits of that product equal those of the signed product, and
        # Verilator then needs no sign extension per PE (measured ~10 % faster at 16x16
        # int8). Otherwise they travel at in_width and are multiplied signed.
        extended = 2 * cfg.acc_width <= 64
        lane = unsigned(cfg.acc_width) if extended else signed(W)
        acc_shape = unsigned(cfg.acc_width) if extended else signed(cfg.acc_width)

        feed_flags = Signal(3)
        m.d.comb += feed_flags.eq(flags)
        # Every PE (i, j) sees the flags of the wavefront that entered i + j cycles ago:
        # one delay line indexed by the anti-diagonal, not a copy per PE.
        flags_at = [feed_flags]
        for d in range(1, R + C - 1):
            g = Signal(3, name=f"flags_d{d}")
            m.d.sync += g.eq(flags_at[-1])
            flags_at.append(g)
        a_in, b_in = [], []
        for i in range(R):
            x = Mux(feed_v, Mux(feed_bank, a_data[1][i], a_data[0][i]), 0)
            xs = Signal(lane, name=f"a_feed{i}")
            m.d.comb += xs.eq(x)
            a_in.append(skewed(xs, i, f"a_skew{i}"))
        for j in range(C):
            y = Mux(feed_v, Mux(feed_bank, b_data[1][j], b_data[0][j]), 0)
            ys = Signal(lane, name=f"b_feed{j}")
            m.d.comb += ys.eq(y)
            b_in.append(skewed(ys, j, f"b_skew{j}"))

        # ---- PE grid ---------------------------------------------------------------------
        # Each PE accumulates; the k = 0 wavefront of a clearing COMPUTE clears it as it
        # passes, and the last wavefront of a tile copies the final sum into output bank
        # 0 or 1 (cap flags), so the next tile can start while this one is read.
        acc = [[Signal(acc_shape, name=f"acc_{i}_{j}", reset_less=True) for j in range(C)]
               for i in range(R)]
        out = [[[Signal(acc_shape, name=f"out{o}_{i}_{j}", reset_less=True) for j in range(C)]
                for i in range(R)] for o in (0, 1)]
        b_col = list(b_in)
        for i in range(R):
            a_row = a_in[i]
            for j in range(C):
                a_cur, f_cur, b_cur = a_row, flags_at[i + j], b_col[j]
                prod = (a_cur * b_cur)[:cfg.acc_width] if extended else a_cur * b_cur
                new = Signal(acc_shape, name=f"sum_{i}_{j}")
                m.d.comb += new.eq(Mux(f_cur[0], 0, acc[i][j]) + prod)
                m.d.sync += [acc[i][j].eq(new),
                             out[0][i][j].eq(Mux(f_cur[1], new, out[0][i][j])),
                             out[1][i][j].eq(Mux(f_cur[2], new, out[1][i][j]))]
                if j + 1 < C:        # pass A right
                    a_row = Signal(lane, name=f"a_{i}_{j}", reset_less=True)
                    m.d.sync += a_row.eq(a_cur)
                if i + 1 < R:        # pass B down
                    b_col[j] = Signal(lane, name=f"b_{i}_{j}", reset_less=True)
                    m.d.sync += b_col[j].eq(b_cur)

        return out
