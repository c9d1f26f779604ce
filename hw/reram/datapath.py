"""The tile's analog read path: bit-serial DACs, crossbar column or row sums, ADCs and
the digital shift-add back end."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import rng as R
from .command import conductance_row_layout
from .config import TileConfig
from .draws import bounded, mix32, tree_sum

__all__ = ["CrossbarDatapath"]


class CrossbarDatapath(wiring.Component):
    """Multiplies input vectors by the crossbar held in the tile's conductance memory.

    Per vector: the inputs are driven bit-serially, ``dac_bits`` magnitude bits per step
    and the sign bit last (``input_steps`` steps). MVM (``transpose`` low) accumulates
    ``rows_per_cycle`` crossbar rows per cycle into every column's analog sum, one sum
    per slice, and converts them with per-column ADCs when a step's rows are in; MVM_T
    forms ``rows_per_cycle`` rows' dot products per cycle and converts them at once.
    Converted codes are shifted by their slice and step and added; the offset encoding's
    bias is removed digitally. Read noise is drawn per conversion, salted by the vectors
    converted since reset (kept here). Numerics: :class:`TileConfig`, bit-exact model
    :class:`sw.golden.reram.ReramModel`.

    Ports
    -----
    vin : In(stream of ``ArrayLayout(signed(input_bits), max(rows, cols))``)
    vout : Out(stream of ``ArrayLayout(signed(out_width), max(rows, cols))``)
    transpose : In(1), MVM_T instead of MVM; held while a vector is in flight
    seed : In(32), the device seed
    group : Out(range(row_groups + 2)), the row group to read
    g : In(ArrayLayout(conductance_row_layout(cfg), rows_per_cycle)), the words of the
        group addressed one cycle before (row ``group * rows_per_cycle + b`` in ``g[b]``)
    """

    def __init__(self, cfg: TileConfig):
        self.cfg = cfg
        n = max(cfg.rows, cfg.cols)
        super().__init__({
            "vin": In(stream.Signature(data.ArrayLayout(signed(cfg.input_bits), n))),
            "vout": Out(stream.Signature(data.ArrayLayout(signed(cfg.out_width), n))),
            "transpose": In(1),
            "seed": In(32),
            "group": Out(range(cfg.row_groups + 2)),
            "g": In(data.ArrayLayout(conductance_row_layout(cfg), cfg.rows_per_cycle)),
        })

    @property
    def _sum_w(self) -> int:
        """Signed width of an analog sum: ``rows`` full digits times the largest code."""
        c = self.cfg
        return (c.rows * ((1 << c.dac_bits) - 1) * c.g_max).bit_length() + 2

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        Rn, C, S = c.rows, c.cols, c.slices
        P, G, J = c.rows_per_cycle, c.row_groups, c.input_steps
        L = G * P                                         # rows padded to whole groups
        n_in, ow = max(Rn, C), c.out_width

        step = Signal(range(J + 1))
        i = Signal(range(G + 2))
        x = [Signal(signed(c.input_bits), name=f"x{k}") for k in range(max(n_in, L))]
        bias = Signal(signed(ow))
        col_sum = [Signal(signed(self._sum_w), name=f"cs{k}") for k in range(C * S)]
        y = [Signal(signed(ow), name=f"y{k}") for k in range(C)]
        yt = [Signal(signed(ow), name=f"yt{k}") for k in range(L)]
        noise_ctr = Signal(32)        # vectors converted since reset

        do_conv = Signal()            # MVM: convert all column sums of step `conv_step`
        conv_step = Signal(range(J + 1))
        acc_row = Signal()            # MVM: add row group i-1 into the column sums
        conv_row = Signal()           # MVM_T: convert row group i-1's dot products
        m.d.comb += self.group.eq(i)

        with m.FSM(name="mvm"):
            with m.State("TAKE"):
                m.d.comb += self.vin.ready.eq(1)
                with m.If(self.vin.valid):
                    n_act = Mux(self.transpose, C, Rn)
                    terms = [Mux(k < n_act, self.vin.payload[k], 0) for k in range(n_in)]
                    m.d.sync += [x[k].eq(self.vin.payload[k] if k < n_in else 0)
                                 for k in range(len(x))]
                    if not c.differential:  # offset encoding: remove the weights' bias
                        m.d.sync += bias.eq(tree_sum(terms) << (c.weight_bits - 1))
                    else:
                        m.d.sync += bias.eq(0)
                    m.d.sync += [v.eq(0) for v in y + yt + col_sum]
                    m.d.sync += [step.eq(0), i.eq(0)]
                    m.next = "RUN"

            with m.State("RUN"):
                last_i = i == G
                m.d.sync += i.eq(Mux(last_i, 0, i + 1))
                with m.If(last_i):
                    m.d.sync += step.eq(step + 1)
                    with m.If(step == J - 1):
                        m.next = "CONV"
                # MVM: at i == 0, convert the previous step's column sums
                with m.If(~self.transpose & (i == 0) & (step != 0)):
                    m.d.comb += [do_conv.eq(1), conv_step.eq(step - 1)]
                # row groups i-1 = 0..G-1 arrive from the conductance memory
                with m.If(i != 0):
                    m.d.comb += [acc_row.eq(~self.transpose), conv_row.eq(self.transpose)]

            with m.State("CONV"):
                m.d.comb += [do_conv.eq(~self.transpose), conv_step.eq(J - 1)]
                m.next = "OUT"

            with m.State("OUT"):
                m.d.comb += self.vout.valid.eq(1)
                for k in range(n_in):
                    yv = y[k] - bias if k < C else 0
                    ytv = yt[k] - bias if k < Rn else 0
                    m.d.comb += self.vout.payload[k].eq(Mux(self.transpose, ytv, yv))
                with m.If(self.vout.ready):
                    m.d.sync += noise_ctr.eq(noise_ctr + 1)
                    m.next = "TAKE"

        # input digits: x[0..P-1] are the current row group's inputs (MVM, the vector
        # rotates by P rows per group), x[0..C-1] the column inputs (MVM_T)
        ds = [self._digit(m, x[k], step) for k in range(max(C, P))]

        self._mvm(m, acc_row, do_conv, conv_step, ds, x, col_sum, y, noise_ctr)
        self._mvm_t(m, conv_row, step, i, ds, yt, noise_ctr)
        return m

    def _mvm(self, m, acc_row, do_conv, conv_step, ds, x, col_sum, y, noise_ctr):
        """MVM: ``acc_row`` adds a row group into every column's per-slice sum (the input
        vector ``x`` rotates by a group); ``do_conv`` converts the sums of input step
        ``conv_step`` and shift-adds them into ``y``."""
        c = self.cfg
        C, S, P, J = c.cols, c.slices, c.rows_per_cycle, c.input_steps
        L = c.row_groups * P
        # ---- MVM: accumulate one row group into every column sum ----------------------
        with m.If(acc_row):
            for col in range(C):
                for s in range(S):
                    part = tree_sum([ds[b] * self._g_eff(self.g[b], col, s) for b in range(P)])
                    m.d.sync += col_sum[col * S + s].eq(col_sum[col * S + s] + part)
            m.d.sync += [x[k].eq(x[(k + P) % L]) for k in range(L)]

        # ---- MVM: convert every column sum of one input step, shift-add into y --------
        with m.If(do_conv):
            salt = self._noise_salt(m, noise_ctr, conv_step) if c.read_noise else None
            conv_weight = self._step_weight(m, conv_step, "conv_weight")
            for col in range(C):
                add = []
                for s in range(S):
                    k = col * S + s
                    v = col_sum[k]
                    if c.read_noise:
                        v = v + bounded(mix32(m, Const(R.mix32_int(k), 32) ^ salt, f"cnoise{k}"),
                                        c.read_noise)
                    add.append(self._adc(m, v, s, conv_step == J - 1))
                m.d.sync += y[col].eq(y[col] + conv_weight * tree_sum(add))
            m.d.sync += [v.eq(0) for v in col_sum]

    def _mvm_t(self, m, conv_row, step, i, ds, yt, noise_ctr):
        """MVM_T: ``conv_row`` converts the dot products of row group ``i - 1`` with the
        column inputs' digits ``ds`` at input step ``step`` into ``yt``."""
        c = self.cfg
        C, S, P, J = c.cols, c.slices, c.rows_per_cycle, c.input_steps
        L = c.row_groups * P
        # ---- MVM_T: one row group's dot products, converted per slice -----------------
        # yt rotates by P per group: yt[b] holds row (i-1)*P + b, which returns to its own
        # place after the G groups of a step
        with m.If(conv_row):
            salt = self._noise_salt(m, noise_ctr, step) if c.read_noise else None
            step_weight = self._step_weight(m, step, "step_weight")
            pb = P.bit_length() - 1                       # row = group * P + bank
            for b in range(P):
                add = []
                for s in range(S):
                    rs = tree_sum([ds[col] * self._g_eff(self.g[b], col, s) for col in range(C)])
                    if c.read_noise:
                        r = ((i - 1) << pb) + b if P > 1 else i - 1
                        lane = mix32(m, ((r * S + s) | (1 << 31))[:32], f"rlane{b}_{s}")
                        rs = rs + bounded(mix32(m, lane ^ salt, f"rnoise{b}_{s}"), c.read_noise)
                    add.append(self._adc(m, rs, s, step == J - 1))
                m.d.sync += yt[L - P + b].eq(yt[b] + step_weight * tree_sum(add))
            m.d.sync += [yt[k].eq(yt[k + P]) for k in range(L - P)]

    # ---- DAC: the bit-serial input schedule ------------------------------------------
    def _chunks(self):
        """Bit ranges ``[a, b)`` of the magnitude steps; the sign bit follows."""
        top, chunks, lo = self.cfg.input_bits - 1, [], 0
        while lo < top:
            chunks.append((lo, min(lo + self.cfg.dac_bits, top)))
            lo = chunks[-1][1]
        return chunks

    def _step_weight(self, m, step, name):
        """The weight of input step ``step``'s digits: ``2**a``, the sign step's negative."""
        top = self.cfg.input_bits - 1
        weight = Signal(signed(self.cfg.input_bits + 1), name=name)
        with m.Switch(step):
            for j, (a, _) in enumerate(self._chunks()):
                with m.Case(j):
                    m.d.comb += weight.eq(1 << a)
            with m.Default():
                m.d.comb += weight.eq(-(1 << top))
        return weight

    def _digit(self, m, value, step):
        """The DAC digit of ``value`` at input step ``step``."""
        top = self.cfg.input_bits - 1
        d = Signal(self.cfg.dac_bits)
        with m.Switch(step):
            for j, (a, b) in enumerate(self._chunks()):
                with m.Case(j):
                    m.d.comb += d.eq(value.as_unsigned()[a:b])
            with m.Default():
                m.d.comb += d.eq(value.as_unsigned()[top])
        return d

    # ---- crossbar -------------------------------------------------------------------
    def _g_eff(self, word, col, s):
        """What slice ``s``'s ADC of column ``col`` sees from this word: the cell, or a
        differential pair's difference (positive cell minus negative cell)."""
        c = self.cfg
        cell = lambda lane: word[col * c.lanes + lane]                      # noqa: E731
        if not c.differential:
            return cell(s)
        if c.g_signed:
            return cell(s) - cell(c.slices + s)
        widened = lambda lane: Cat(cell(lane), Const(0, 1)).as_signed()  # noqa: E731
        return widened(s) - widened(c.slices + s)

    def _noise_salt(self, m, noise_ctr, step):
        mixed = (noise_ctr * R.GOLDEN + step * R.STRIDE)[:32]
        return mix32(m, mixed ^ self.seed ^ R.STREAM_NOISE, "noise_salt")

    # ---- ADC + shift-add -------------------------------------------------------------
    def _quantize(self, m, value, shift, s):
        """A column sum -> its ADC code at LSB ``2**shift`` levels, placed at slice ``s``."""
        c = self.cfg
        sh = shift + c.g_frac_bits
        code_lo, code_hi = c.adc_code_range
        v = Signal(signed(self._sum_w + 1))
        m.d.comb += v.eq(value + ((1 << (sh - 1)) if sh else 0))
        q = Signal(signed(self._sum_w + 1))
        m.d.comb += q.eq(v >> sh)
        code = Signal(signed(c.adc_bits + 1))
        m.d.comb += code.eq(Mux(q < code_lo, code_lo, Mux(q > code_hi, code_hi, q)))
        return code << (shift + c.cell_bits * s)

    def _adc(self, m, value, s, sign):
        """The conversion of a sum, before the step weight: the sign step converts with its
        own LSB (:meth:`TileConfig.step_adc_shift`); for 1-bit DACs both LSBs are the
        same and there is one quantizer."""
        c = self.cfg
        mag = self._quantize(m, value, c.adc_shift, s)
        if c.sign_adc_shift == c.adc_shift:
            return mag
        return Mux(sign, self._quantize(m, value, c.sign_adc_shift, s), mag)
