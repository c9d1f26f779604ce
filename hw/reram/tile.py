"""ReRAM tile controller with a behavioural crossbar, DAC/ADC and wear counters."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from . import rng as R
from .command import STATS_LAYOUT, TileOp, tile_command_layout
from .config import TileConfig

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


def mix32(m, x, name="mix"):
    """lowbias32 on a 32-bit Amaranth value (see :mod:`hw.reram.rng`).

    Every stage is a named signal: an expression that used its input twice would
    otherwise be duplicated by the backend at every stage.
    """
    stages = [lambda v: v[:32], lambda v: v ^ (v >> 16), lambda v: (v * R.MIX_M1)[:32],
              lambda v: v ^ (v >> 15), lambda v: (v * R.MIX_M2)[:32], lambda v: v ^ (v >> 16)]
    for n, f in enumerate(stages):
        sig = Signal(32, name=f"{name}_{n}")
        m.d.comb += sig.eq(f(x))
        x = sig
    return x


def gauss(m, h, mult, width: int, name: str):
    """Gaussian draw from hash word ``h`` with integer multiplier ``mult`` (a constant or
    a signal): Irwin-Hall of four 16-bit uniforms, scaled and rounded; the method and
    constants are :mod:`hw.reram.rng`'s, the numpy twin :func:`sw.golden.reram.gauss`."""
    h2 = mix32(m, h ^ R.STREAM_GAUSS, f"{name}_h2")
    s = Signal(signed(19), name=f"{name}_s")
    m.d.comb += s.eq(h[:16] + h[16:32] + h2[:16] + h2[16:32] - 2 * 0xFFFF)
    d = Signal(signed(width), name=f"{name}_d")
    m.d.comb += d.eq((s * mult + (1 << (R.GAUSS_SHIFT - 1))) >> R.GAUSS_SHIFT)
    return d


def gauss_width(mult: int) -> int:
    """Signed width of a draw of multiplier ``mult`` (its largest magnitude plus one)."""
    return (((2 * 0xFFFF * mult) >> R.GAUSS_SHIFT) + 1).bit_length() + 1


def bounded(h, bound: int):
    """Hash -> signed integer in [-bound, bound] (same map as :func:`sw.golden.reram.bounded`)."""
    if not bound:
        return Const(0, signed(2))
    scaled = (h[:16] * (2 * bound + 1)) >> 16                  # in [0, 2*bound], unsigned
    return Cat(scaled, Const(0, 1)).as_signed() - bound


class ReramTile(wiring.Component):
    """One ReRAM tile: a behavioural crossbar of ``rows x cols`` weights, bit-sliced over
    ``slices`` cells, with its programming controller, bit-serial DACs, ADCs and
    shift-add back end. Encoding and numerics: :class:`TileConfig`; bit-exact model:
    :class:`sw.golden.reram.ReramModel`.

    The crossbar state is a row-major conductance memory (one word = one crossbar row,
    all columns and slices), banked ``rows_per_cycle`` ways, plus a wear memory of pulses
    per cell. Everything runs in the RTL without Python: an analog column sum is formed by
    accumulating ``rows_per_cycle`` crossbar rows per cycle (MVM) or converting that many
    rows' dot products per cycle (MVM_T), then converted by per-column ADCs and
    shift-added. Latencies: :meth:`TileConfig.program_latency`,
    :meth:`TileConfig.mvm_latency`, :meth:`TileConfig.mvm_t_latency`, exposed below.

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
        Rn, C, S, F = c.rows, c.cols, c.slices, c.g_frac_bits
        P, G = c.rows_per_cycle, c.row_groups             # rows summed per cycle, row groups
        L = G * P                                         # rows padded to whole groups
        pb = P.bit_length() - 1                           # row = group * P + bank
        cb, gw, J = c.cell_bits, c.g_width, c.input_steps
        ow = c.out_width
        NL = c.lanes                                     # cells per weight: S, or 2S paired
        cells = C * NL                                   # cells in one crossbar row
        diff = c.differential
        gaussian = c.device_model.kind == "gaussian"
        if gaussian:
            pulse_mult, relax_mult = c.gauss_multipliers()
            dw = max(gauss_width(pulse_mult), F + 2)                 # a pulse's error
            rw = gauss_width(max(relax_mult))                        # relaxation
        else:
            dw = F + 2

        # ---- memories: conductance codes and wear, one word per crossbar row ----------
        # The conductances are banked P ways (row r in bank r % P at address r // P), so
        # one read gives the P rows of a row group; rows past the last are never written
        # and read as zero conductance. (At least 2 deep: a 1-deep memory would have a
        # zero-width address port.)
        g_shape = signed(gw) if c.g_signed else unsigned(gw)
        g_wr, g_rd = [], []
        for b in range(P):
            bank = memory.Memory(shape=data.ArrayLayout(g_shape, cells), depth=max(G, 2),
                                 init=[])
            m.submodules[f"g_mem{b}" if P > 1 else "g_mem"] = bank
            g_wr.append(bank.write_port())
            g_rd.append(bank.read_port())
        m.submodules.wear_mem = wear_mem = memory.Memory(
            shape=data.ArrayLayout(unsigned(32), cells), depth=max(Rn, 2), init=[])
        wear_wr, wear_rd = wear_mem.write_port(), wear_mem.read_port()

        def g_cell(word, col, lane):
            return word[col * NL + lane]

        def g_eff(word, col, s):
            """What slice ``s``'s ADC of column ``col`` sees from this word: the cell, or
            a differential pair's difference (positive cell minus negative cell)."""
            if not diff:
                return g_cell(word, col, s)
            if c.g_signed:
                return g_cell(word, col, s) - g_cell(word, col, S + s)
            return (Cat(g_cell(word, col, s), Const(0, 1)).as_signed()
                    - Cat(g_cell(word, col, S + s), Const(0, 1)).as_signed())

        # ---- registers ------------------------------------------------------------------
        op = Signal(TileOp)
        row = Signal(range(Rn + 1))
        left = Signal(16)
        epoch = Signal(32)            # rows programmed since reset
        noise_ctr = Signal(32)        # vectors converted since reset
        st_busy, st_total, st_mvms = Signal(48), Signal(48), Signal(48)
        st_max, st_over = Signal(32), Signal(32)
        snap = Signal(STATS_LAYOUT)
        m.d.sync += st_busy.eq(st_busy + self.busy)

        # PROGRAM state
        it = Signal(range(c.verify_iters + 1))
        wait = Signal(range(c.write_latency + 1))
        target = [Signal(unsigned(cb), name=f"lvl{k}") for k in range(cells)]
        done_c = [Signal(name=f"ok{k}") for k in range(cells)]
        delta = [Signal(signed(dw), name=f"dlt{k}") for k in range(cells)]
        pulses = [Signal(range(c.verify_iters + 1), name=f"pls{k}") for k in range(cells)]

        # MVM state
        n_in = max(Rn, C)
        transpose = Signal()
        step = Signal(range(J + 1))
        i = Signal(range(G + 2))
        x = [Signal(signed(c.input_bits), name=f"x{k}") for k in range(max(n_in, L))]
        bias = Signal(signed(ow))
        sum_w = (Rn * ((1 << c.dac_bits) - 1) * c.g_max).bit_length() + 2
        col_sum = [Signal(signed(sum_w), name=f"cs{k}") for k in range(C * S)]
        y = [Signal(signed(ow), name=f"y{k}") for k in range(C)]
        yt = [Signal(signed(ow), name=f"yt{k}") for k in range(L)]

        do_conv = Signal()            # MVM: convert all column sums of step `conv_step`
        conv_step = Signal(range(J + 1))
        acc_row = Signal()            # MVM: add row group i-1 into the column sums
        conv_row = Signal()           # MVM_T: convert row group i-1's dot products

        m.d.comb += [wear_wr.addr.eq(row), wear_rd.addr.eq(row)]
        for b in range(P):
            m.d.comb += [g_wr[b].addr.eq(row >> pb), g_rd[b].addr.eq(i)]

        # ---- input digits of step `step` (bit-serial DAC schedule) --------------------
        top = c.input_bits - 1
        chunks, lo = [], 0
        while lo < top:
            chunks.append((lo, min(lo + c.dac_bits, top)))
            lo = chunks[-1][1]
        step_weight = Signal(signed(c.input_bits + 1))
        with m.Switch(step):
            for j, (a, b) in enumerate(chunks):
                with m.Case(j):
                    m.d.comb += step_weight.eq(1 << a)
            with m.Default():
                m.d.comb += step_weight.eq(-(1 << top))

        def digit(value, which):
            d = Signal(c.dac_bits)
            with m.Switch(which):
                for j, (a, b) in enumerate(chunks):
                    with m.Case(j):
                        m.d.comb += d.eq(value.as_unsigned()[a:b])
                with m.Default():
                    m.d.comb += d.eq(value.as_unsigned()[top])
            return d

        # ---- ADC + shift-add: a column sum -> the value it adds, before the step weight --
        # the sign step converts with its own LSB (TileConfig.step_adc_shift); for 1-bit
        # DACs both LSBs are the same and there is one quantizer
        code_lo, code_hi = c.adc_code_range

        def quantize(value, shift, s):
            sh = shift + F
            v = Signal(signed(sum_w + 1))
            m.d.comb += v.eq(value + ((1 << (sh - 1)) if sh else 0))
            q = Signal(signed(sum_w + 1))
            m.d.comb += q.eq(v >> sh)
            code = Signal(signed(c.adc_bits + 1))
            m.d.comb += code.eq(Mux(q < code_lo, code_lo, Mux(q > code_hi, code_hi, q)))
            return code << (shift + cb * s)

        def adc(value, s, sign):
            mag = quantize(value, c.adc_shift, s)
            if c.sign_adc_shift == c.adc_shift:
                return mag
            return Mux(sign, quantize(value, c.sign_adc_shift, s), mag)

        seed = self.seed if self.seed_port else Const(c.seed, 32)

        def noise_salt(conv_step):
            mixed = (noise_ctr * R.GOLDEN + conv_step * R.STRIDE)[:32]
            return mix32(m, mixed ^ seed ^ R.STREAM_NOISE, "noise_salt")

        # ---- control ----------------------------------------------------------------------
        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                cmd = self.cmd.payload
                with m.If(self.cmd.valid):
                    m.d.sync += [op.eq(cmd.op), row.eq(cmd.addr), left.eq(cmd.count)]
                    with m.Switch(cmd.op):
                        with m.Case(TileOp.PROGRAM):
                            with m.If(cmd.count != 0):
                                m.next = "P_TAKE"
                        with m.Case(TileOp.MVM, TileOp.MVM_T):
                            m.d.sync += transpose.eq(cmd.op == TileOp.MVM_T)
                            with m.If(cmd.count != 0):
                                m.next = "V_TAKE"
                        with m.Case(TileOp.READ_STATS):
                            m.d.sync += [snap.busy_cycles.eq(st_busy),
                                         snap.total_pulses.eq(st_total),
                                         snap.max_pulses.eq(st_max),
                                         snap.over_limit.eq(st_over), snap.mvms.eq(st_mvms)]
                            m.next = "S_OUT"
                        with m.Case(TileOp.RESET_STATS):
                            m.d.sync += [st_total.eq(0), st_mvms.eq(0)]
                            m.d.sync += st_busy.eq(0)

            with m.State("S_OUT"):
                m.d.comb += [self.busy.eq(1), self.stats.valid.eq(1),
                             self.stats.payload.eq(snap)]
                with m.If(self.stats.ready):
                    m.next = "IDLE"

            # ---- PROGRAM: take a weight row, write-verify every cell, write back ------
            with m.State("P_TAKE"):
                m.d.comb += [self.busy.eq(1), self.w.ready.eq(1)]
                with m.If(self.w.valid):
                    bias_w = 1 << (c.weight_bits - 1)
                    for col in range(C):
                        wv = self.w.payload[col]
                        if diff:        # magnitudes of max(w, 0) and max(-w, 0)
                            pos = Signal(unsigned(c.weight_bits), name=f"wp{col}")
                            neg = Signal(unsigned(c.weight_bits), name=f"wn{col}")
                            m.d.comb += [pos.eq(Mux(wv < 0, 0, wv)), neg.eq(Mux(wv < 0, -wv, 0))]
                            words = [pos, neg]
                        else:           # offset: w + 2**(weight_bits-1)
                            u = Signal(unsigned(c.weight_bits), name=f"u{col}")
                            m.d.comb += u.eq(wv + bias_w)
                            words = [u]
                        for h, u in enumerate(words):
                            for s in range(S):
                                k = col * NL + h * S + s
                                m.d.sync += [target[k].eq(u[s * cb:(s + 1) * cb]),
                                             done_c[k].eq(0), pulses[k].eq(0), delta[k].eq(0)]
                    m.d.sync += [it.eq(0), wait.eq(0)]
                    m.next = "P_PULSE"

            with m.State("P_PULSE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += wait.eq(Mux(wait == c.write_latency - 1, 0, wait + 1))
                with m.If(wait == 0):
                    # one program-and-verify round for every cell of the row, in lockstep
                    t = it + 1
                    salt = mix32(m, (epoch * R.GOLDEN + t * R.STRIDE)[:32]
                                 ^ seed ^ R.STREAM_VARIATION, "var_salt")
                    row_salt = mix32(m, row ^ salt, "var_row_salt")
                    for k in range(cells):
                        if gaussian and pulse_mult:
                            h = mix32(m, row_salt ^ R.mix32_int(k), f"var{k}")
                            d_t = gauss(m, h, pulse_mult, dw, f"pulse{k}")
                            ok_t = (d_t <= c.verify_tol) & (d_t >= -c.verify_tol)
                        elif c.prog_variation:
                            d_t = Signal(signed(F + 2), name=f"dt{k}")
                            h = mix32(m, row_salt ^ R.mix32_int(k), f"var{k}")
                            m.d.comb += d_t.eq(bounded(h, c.prog_variation))
                            ok_t = (d_t <= c.verify_tol) & (d_t >= -c.verify_tol)
                        else:
                            d_t, ok_t = 0, 1
                        with m.If(~done_c[k]):
                            m.d.sync += [pulses[k].eq(pulses[k] + 1), delta[k].eq(d_t),
                                         done_c[k].eq(ok_t)]
                    m.d.sync += it.eq(it + 1)
                rounds_done = Mux(wait == 0, it + 1, it)
                with m.If((wait == c.write_latency - 1) & (rounds_done == c.verify_iters)):
                    m.next = "P_WRITE"

            with m.State("P_WRITE"):
                m.d.comb += [self.busy.eq(1), wear_wr.en.eq(1)]
                for b in range(P):
                    m.d.comb += g_wr[b].en.eq(row[:pb] == b if P > 1 else 1)
                full = ((1 << cb) - 1) << F
                on_thr, off_thr = R.ppm_threshold(c.stuck_on_ppm), R.ppm_threshold(c.stuck_off_ppm)
                if on_thr or off_thr:
                    fault_row = mix32(m, row ^ (R.salt_int(c.seed, R.STREAM_FAULT)
                                                if not self.seed_port else
                                                mix32(m, seed ^ R.STREAM_FAULT, "fault_salt")),
                                      "fault_row")
                if gaussian and any(relax_mult):
                    # relaxation after the last verify: one draw per cell, its sigma by level
                    relax_row = mix32(m, row ^ mix32(m, (epoch * R.GOLDEN)[:32] ^ seed
                                                     ^ R.STREAM_RELAX, "relax_salt"),
                                      "relax_row")
                g_words, new_wear = [], []
                crossings, pulse_sum = [], []
                for k in range(cells):
                    tgt = Signal(unsigned(cb + F), name=f"tgt{k}")
                    m.d.comb += tgt.eq(target[k] << F)
                    g = Signal(signed(gw) if c.g_signed else unsigned(gw), name=f"g{k}")
                    p = Signal(range(c.verify_iters + 1), name=f"p{k}")
                    err = delta[k]
                    if gaussian and any(relax_mult):
                        mult = Signal(range(max(relax_mult) + 1), name=f"rmul{k}")
                        with m.Switch(target[k]):
                            for lv, mv in enumerate(relax_mult):
                                with m.Case(lv):
                                    m.d.comb += mult.eq(mv)
                        h = mix32(m, relax_row ^ R.mix32_int(k), f"relax{k}")
                        err = err + gauss(m, h, mult, rw, f"relax{k}")
                    raw = Signal(signed(max(cb + F, dw, rw if gaussian else 0) + 3),
                                 name=f"raw{k}")
                    m.d.comb += raw.eq(Cat(tgt, Const(0, 1)).as_signed() + err)
                    lo_g = c.g_min_code
                    m.d.comb += [g.eq(Mux(raw < lo_g, lo_g, Mux(raw > c.g_max, c.g_max, raw))),
                                 p.eq(pulses[k])]
                    if on_thr or off_thr:
                        hf = Signal(32, name=f"hf{k}")
                        m.d.comb += hf.eq(mix32(m, fault_row ^ R.mix32_int(k), f"fault{k}"))
                        for thr_lo, thr_hi, value in ((0, on_thr, full),
                                                      (on_thr, on_thr + off_thr, 0)):
                            if thr_hi > thr_lo:
                                hit = (hf < thr_hi) if thr_lo == 0 else (hf >= thr_lo) & (hf < thr_hi)
                                err = value - Cat(tgt, Const(0, 1)).as_signed()
                                passed = (err <= c.verify_tol) & (err >= -c.verify_tol)
                                with m.If(hit):
                                    m.d.comb += [g.eq(value),
                                                 p.eq(Mux(passed, 1, c.verify_iters))]
                    g_words.append(g)
                    old = wear_rd.data[k]
                    nw = Signal(32, name=f"nw{k}")
                    m.d.comb += nw.eq(old + p)
                    new_wear.append(nw)
                    crossings.append((old <= c.endurance) & (nw > c.endurance))
                    pulse_sum.append(p)
                m.d.comb += [wear_wr.data[k].eq(w) for k, w in enumerate(new_wear)]
                m.d.comb += [g_wr[b].data[k].eq(g) for b in range(P)
                             for k, g in enumerate(g_words)]
                level, n_ = list(new_wear), 0          # maximum as a balanced tree
                while len(level) > 1:
                    nxt = []
                    for a in range(0, len(level) - 1, 2):
                        mx = Signal(32, name=f"rowmax{n_}")
                        n_ += 1
                        m.d.comb += mx.eq(Mux(level[a] > level[a + 1], level[a], level[a + 1]))
                        nxt.append(mx)
                    level = nxt + ([level[-1]] if len(level) % 2 else [])
                row_max = level[0]
                m.d.sync += [
                    st_total.eq(st_total + _tree_sum(pulse_sum)),
                    st_over.eq(st_over + _tree_sum(crossings)),
                    st_max.eq(Mux(row_max > st_max, row_max, st_max)),
                    epoch.eq(epoch + 1), row.eq(row + 1), left.eq(left - 1),
                ]
                with m.If(left == 1):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "P_TAKE"

            # ---- MVM / MVM_T ----------------------------------------------------------
            with m.State("V_TAKE"):
                m.d.comb += [self.busy.eq(1), self.vin.ready.eq(1)]
                with m.If(self.vin.valid):
                    n_act = Mux(transpose, C, Rn)
                    terms = [Mux(k < n_act, self.vin.payload[k], 0) for k in range(n_in)]
                    m.d.sync += [x[k].eq(self.vin.payload[k] if k < n_in else 0)
                                 for k in range(len(x))]
                    if not diff:    # offset encoding: remove the weights' bias digitally
                        m.d.sync += bias.eq(_tree_sum(terms) << (c.weight_bits - 1))
                    else:
                        m.d.sync += bias.eq(0)
                    m.d.sync += [v.eq(0) for v in y + yt + col_sum]
                    m.d.sync += [step.eq(0), i.eq(0)]
                    m.next = "V_RUN"

            with m.State("V_RUN"):
                m.d.comb += self.busy.eq(1)
                last_i = i == G
                m.d.sync += i.eq(Mux(last_i, 0, i + 1))
                with m.If(last_i):
                    m.d.sync += step.eq(step + 1)
                    with m.If(step == J - 1):
                        m.next = "V_CONV"
                # MVM: at i == 0, convert the previous step's column sums
                with m.If(~transpose & (i == 0) & (step != 0)):
                    m.d.comb += [do_conv.eq(1), conv_step.eq(step - 1)]
                # row groups i-1 = 0..G-1 arrive from the conductance memory
                with m.If(i != 0):
                    m.d.comb += [acc_row.eq(~transpose), conv_row.eq(transpose)]

            with m.State("V_CONV"):
                m.d.comb += self.busy.eq(1)
                m.d.comb += [do_conv.eq(~transpose), conv_step.eq(J - 1)]
                m.next = "V_OUT"

            with m.State("V_OUT"):
                m.d.comb += [self.busy.eq(1), self.vout.valid.eq(1)]
                for k in range(n_in):
                    yv = y[k] - bias if k < C else 0
                    ytv = yt[k] - bias if k < Rn else 0
                    m.d.comb += self.vout.payload[k].eq(Mux(transpose, ytv, yv))
                with m.If(self.vout.ready):
                    m.d.sync += [st_mvms.eq(st_mvms + 1), noise_ctr.eq(noise_ctr + 1),
                                 left.eq(left - 1)]
                    with m.If(left == 1):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "V_TAKE"

        # input digits: x[0..P-1] are the current row group's inputs (MVM, the vector
        # rotates by P rows per group), x[0..C-1] the column inputs (MVM_T)
        ds = [digit(x[k], step) for k in range(max(C, P))]

        # ---- MVM data path: accumulate one row group into every column sum --------------
        with m.If(acc_row):
            for col in range(C):
                for s in range(S):
                    k = col * S + s
                    part = _tree_sum([ds[b] * g_eff(g_rd[b].data, col, s) for b in range(P)])
                    m.d.sync += col_sum[k].eq(col_sum[k] + part)
            m.d.sync += [x[k].eq(x[(k + P) % L]) for k in range(L)]

        # ---- MVM: convert every column sum of one input step, shift-add into y ----------
        conv_weight = Signal(signed(c.input_bits + 1))
        with m.Switch(conv_step):
            for j, (a, b) in enumerate(chunks):
                with m.Case(j):
                    m.d.comb += conv_weight.eq(1 << a)
            with m.Default():
                m.d.comb += conv_weight.eq(-(1 << top))
        with m.If(do_conv):
            salt = noise_salt(conv_step) if c.read_noise else None
            for col in range(C):
                add = []
                for s in range(S):
                    k = col * S + s
                    v = col_sum[k]
                    if c.read_noise:
                        v = v + bounded(mix32(m, Const(R.mix32_int(k), 32) ^ salt, f"cnoise{k}"),
                                        c.read_noise)
                    add.append(adc(v, s, conv_step == J - 1))
                m.d.sync += y[col].eq(y[col] + conv_weight * _tree_sum(add))
            m.d.sync += [v.eq(0) for v in col_sum]

        # ---- MVM_T data path: one row group's dot products, converted per slice ---------
        # yt rotates by P per group: yt[b] holds row (i-1)*P + b, which returns to its own
        # place after the G groups of a step
        with m.If(conv_row):
            salt = noise_salt(step) if c.read_noise else None
            for b in range(P):
                add = []
                for s in range(S):
                    rs = _tree_sum([ds[col] * g_eff(g_rd[b].data, col, s) for col in range(C)])
                    if c.read_noise:
                        r = ((i - 1) << pb) + b if P > 1 else i - 1
                        lane = mix32(m, ((r * S + s) | (1 << 31))[:32], f"rlane{b}_{s}")
                        rs = rs + bounded(mix32(m, lane ^ salt, f"rnoise{b}_{s}"), c.read_noise)
                    add.append(adc(rs, s, step == J - 1))
                m.d.sync += yt[L - P + b].eq(yt[b] + step_weight * _tree_sum(add))
            m.d.sync += [yt[k].eq(yt[k + P]) for k in range(L - P)]
        return m


def _tree_sum(values):
    values = list(values)
    if not values:
        return Const(0)
    while len(values) > 1:
        values = [values[k] + values[k + 1] if k + 1 < len(values) else values[k]
                  for k in range(0, len(values), 2)]
    return values[0]
