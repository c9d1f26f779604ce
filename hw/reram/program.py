"""Write-verify programming of one crossbar row: the tile's programming controller."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import rng as R
from .command import programmed_row_layout
from .config import TileConfig
from .draws import bounded, gauss, gauss_width, mix32

__all__ = ["WriteVerify"]


class WriteVerify(wiring.Component):
    """Programs one crossbar row at a time: takes a row of signed weights, splits each
    into its cells' target levels (offset or differential encoding, ``cell_bits`` per
    slice), runs ``verify_iters`` program-and-verify rounds of ``write_latency`` cycles
    on every cell in lockstep (a cell stops once its error is within ``verify_tol``),
    then offers the row's conductance codes (target plus the last pulse's error, a
    Gaussian device's relaxation, stuck-at faults) and each cell's pulse count.

    The draws are those of :class:`sw.golden.reram.ReramModel`: salted by the device
    ``seed``, the crossbar ``row`` and the rows programmed since reset (kept here).

    Ports
    -----
    w : In(stream of ``ArrayLayout(signed(weight_bits), cols)``), one weight row
    row : In(range(rows + 1)), the crossbar row being programmed, held until ``cell``
    seed : In(32), the device seed
    cell : Out(stream of :func:`programmed_row_layout`), the programmed row
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        super().__init__({
            "w": In(stream.Signature(data.ArrayLayout(signed(cfg.weight_bits), cfg.cols))),
            "row": In(range(cfg.rows + 1)),
            "seed": In(32),
            "cell": Out(stream.Signature(programmed_row_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        cb, F = c.cell_bits, c.g_frac_bits
        cells = c.cols * c.lanes
        gaussian = c.device_model.kind == "gaussian"
        pulse_mult, relax_mult = c.gauss_multipliers() if gaussian else (0, ())
        relax = gaussian and any(relax_mult)
        dw = max(gauss_width(pulse_mult), F + 2) if gaussian else F + 2   # a pulse's error

        epoch = Signal(32)            # rows programmed since reset
        it = Signal(range(c.verify_iters + 1))
        wait = Signal(range(c.write_latency + 1))
        target = [Signal(unsigned(cb), name=f"lvl{k}") for k in range(cells)]
        done_c = [Signal(name=f"ok{k}") for k in range(cells)]
        delta = [Signal(signed(dw), name=f"dlt{k}") for k in range(cells)]
        pulses = [Signal(range(c.verify_iters + 1), name=f"pls{k}") for k in range(cells)]

        with m.FSM(name="prog"):
            with m.State("TAKE"):
                m.d.comb += self.w.ready.eq(1)
                with m.If(self.w.valid):
                    for k, level in enumerate(self._levels(m, self.w.payload)):
                        m.d.sync += [target[k].eq(level), done_c[k].eq(0), pulses[k].eq(0),
                                     delta[k].eq(0)]
                    m.d.sync += [it.eq(0), wait.eq(0)]
                    m.next = "PULSE"

            with m.State("PULSE"):
                m.d.sync += wait.eq(Mux(wait == c.write_latency - 1, 0, wait + 1))
                with m.If(wait == 0):
                    # one program-and-verify round for every cell of the row, in lockstep
                    salt = mix32(m, (epoch * R.GOLDEN + (it + 1) * R.STRIDE)[:32]
                                 ^ self.seed ^ R.STREAM_VARIATION, "var_salt")
                    row_salt = mix32(m, self.row ^ salt, "var_row_salt")
                    for k in range(cells):
                        d_t, ok_t = self._pulse_error(m, row_salt, k, pulse_mult, dw)
                        with m.If(~done_c[k]):
                            m.d.sync += [pulses[k].eq(pulses[k] + 1), delta[k].eq(d_t),
                                         done_c[k].eq(ok_t)]
                    m.d.sync += it.eq(it + 1)
                rounds_done = Mux(wait == 0, it + 1, it)
                with m.If((wait == c.write_latency - 1) & (rounds_done == c.verify_iters)):
                    m.next = "DONE"

            with m.State("DONE"):
                m.d.comb += self.cell.valid.eq(1)
                if relax:     # relaxation after the last verify: one draw per cell
                    relax_row = mix32(m, self.row ^ mix32(m, (epoch * R.GOLDEN)[:32] ^ self.seed
                                                          ^ R.STREAM_RELAX, "relax_salt"),
                                      "relax_row")
                fault_row = self._fault_row(m)
                for k in range(cells):
                    err = delta[k]
                    if relax:
                        err = err + self._relaxation(m, relax_row, k, target[k], relax_mult)
                    self._settle(m, k, target[k], err, pulses[k], fault_row, dw)
                with m.If(self.cell.ready):
                    m.d.sync += epoch.eq(epoch + 1)
                    m.next = "TAKE"
        return m

    def _levels(self, m, weights):
        """Each cell's target level of a weight row, in cell order."""
        c = self.cfg
        cb, S = c.cell_bits, c.slices
        levels = []
        for col in range(c.cols):
            wv = weights[col]
            if c.differential:        # magnitudes of max(w, 0) and max(-w, 0)
                pos = Signal(unsigned(c.weight_bits), name=f"wp{col}")
                neg = Signal(unsigned(c.weight_bits), name=f"wn{col}")
                m.d.comb += [pos.eq(Mux(wv < 0, 0, wv)), neg.eq(Mux(wv < 0, -wv, 0))]
                words = [pos, neg]
            else:                     # offset: w + 2**(weight_bits-1)
                u = Signal(unsigned(c.weight_bits), name=f"u{col}")
                m.d.comb += u.eq(wv + (1 << (c.weight_bits - 1)))
                words = [u]
            levels += [u[s * cb:(s + 1) * cb] for u in words for s in range(S)]
        return levels

    def _pulse_error(self, m, row_salt, k, pulse_mult, dw):
        """Cell ``k``'s error after this round's pulse, and whether it verifies."""
        c = self.cfg
        if c.device_model.kind == "gaussian" and pulse_mult:
            h = mix32(m, row_salt ^ R.mix32_int(k), f"var{k}")
            d_t = gauss(m, h, pulse_mult, dw, f"pulse{k}")
        elif c.prog_variation:
            d_t = Signal(signed(c.g_frac_bits + 2), name=f"dt{k}")
            h = mix32(m, row_salt ^ R.mix32_int(k), f"var{k}")
            m.d.comb += d_t.eq(bounded(h, c.prog_variation))
        else:
            return 0, 1
        return d_t, (d_t <= c.verify_tol) & (d_t >= -c.verify_tol)

    def _relaxation(self, m, relax_row, k, level, relax_mult):
        """A Gaussian device's relaxation of cell ``k``: its sigma by target level."""
        mult = Signal(range(max(relax_mult) + 1), name=f"rmul{k}")
        with m.Switch(level):
            for lv, mv in enumerate(relax_mult):
                with m.Case(lv):
                    m.d.comb += mult.eq(mv)
        h = mix32(m, relax_row ^ R.mix32_int(k), f"relax{k}")
        return gauss(m, h, mult, gauss_width(max(relax_mult)), f"relax{k}")

    def _fault_row(self, m):
        """The row's stuck-at hash (None without faults)."""
        c = self.cfg
        if not (c.stuck_on_ppm or c.stuck_off_ppm):
            return None
        return mix32(m, self.row ^ mix32(m, self.seed ^ R.STREAM_FAULT, "fault_salt"),
                     "fault_row")

    def _settle(self, m, k, level, err, pulses, fault_row, dw):
        """Cell ``k``'s stored code and pulse count on ``cell``: the target plus its error,
        clipped to the device's codes; a stuck cell reads full or zero and took one pulse
        if that verifies, else every round."""
        c = self.cfg
        F = c.g_frac_bits
        tgt = Signal(unsigned(c.cell_bits + F), name=f"tgt{k}")
        m.d.comb += tgt.eq(level << F)
        rw = gauss_width(max(c.gauss_multipliers()[1])) if c.device_model.kind == "gaussian" else 0
        raw = Signal(signed(max(c.cell_bits + F, dw, rw) + 3), name=f"raw{k}")
        m.d.comb += raw.eq(Cat(tgt, Const(0, 1)).as_signed() + err)
        g, p = self.cell.payload.g[k], self.cell.payload.pulses[k]
        lo_g = c.g_min_code
        m.d.comb += [g.eq(Mux(raw < lo_g, lo_g, Mux(raw > c.g_max, c.g_max, raw))),
                     p.eq(pulses)]
        if fault_row is None:
            return
        on_thr, off_thr = R.ppm_threshold(c.stuck_on_ppm), R.ppm_threshold(c.stuck_off_ppm)
        hf = Signal(32, name=f"hf{k}")
        m.d.comb += hf.eq(mix32(m, fault_row ^ R.mix32_int(k), f"fault{k}"))
        full = ((1 << c.cell_bits) - 1) << F
        for thr_lo, thr_hi, value in ((0, on_thr, full), (on_thr, on_thr + off_thr, 0)):
            if thr_hi > thr_lo:
                hit = (hf < thr_hi) if thr_lo == 0 else (hf >= thr_lo) & (hf < thr_hi)
                miss = value - Cat(tgt, Const(0, 1)).as_signed()
                passed = (miss <= c.verify_tol) & (miss >= -c.verify_tol)
                with m.If(hit):
                    m.d.comb += [g.eq(value), p.eq(Mux(passed, 1, c.verify_iters))]
