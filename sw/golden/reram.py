"""Bit-exact numpy model of the ReRAM tile (:mod:`hw.reram`).

Same seeds, same counters, same integers as the RTL: programmed conductances (with
write-verify and stuck-at faults), pulse counts, ADC codes with read noise, outputs and
statistics. The encoding is documented on :class:`hw.reram.TileConfig`.
"""

from __future__ import annotations

import numpy as np

from hw.reram import TileConfig
from hw.reram import rng as R
from sw.golden.systolic import wrap

__all__ = ["mix32", "ReramModel", "input_digits", "weight_levels"]

M32 = np.uint64(0xFFFFFFFF)


def mix32(x) -> np.ndarray:
    """lowbias32, vectorised (uint64 arithmetic masked to 32 bits)."""
    x = np.asarray(x, dtype=np.uint64) & M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(R.MIX_M1)) & M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(R.MIX_M2)) & M32
    x ^= x >> np.uint64(16)
    return x


def bounded(h, bound: int) -> np.ndarray:
    h = np.asarray(h, dtype=np.uint64)
    return (((h & np.uint64(0xFFFF)) * np.uint64(2 * bound + 1)) >> np.uint64(16)).astype(np.int64) - bound


def _check(cfg_bits: int, x, name: str, length: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, not {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.shape[-1] != length:
        raise ValueError(f"{name} must have {length} elements per vector, not {arr.shape[-1]}")
    lo, hi = -(1 << (cfg_bits - 1)), (1 << (cfg_bits - 1)) - 1
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"{name} has values outside the signed {cfg_bits}-bit range [{lo}, {hi}]")
    return arr


def weight_levels(cfg: TileConfig, w) -> np.ndarray:
    """Offset-encoded weights ``(..., n)`` -> cell levels ``(..., n, slices)``."""
    u = np.asarray(w, np.int64) + (1 << (cfg.weight_bits - 1))
    s = np.arange(cfg.slices, dtype=np.int64) * cfg.cell_bits
    return (u[..., None] >> s) & ((1 << cfg.cell_bits) - 1)


def input_digits(cfg: TileConfig, x) -> list[tuple[np.ndarray, int]]:
    """Bit-serial DAC schedule: ``[(digits, weight), ...]`` per input step."""
    xu = np.asarray(x, np.int64) & ((1 << cfg.input_bits) - 1)
    out, lo, top = [], 0, cfg.input_bits - 1
    while lo < top:
        hi = min(lo + cfg.dac_bits, top)
        out.append(((xu >> lo) & ((1 << (hi - lo)) - 1), 1 << lo))
        lo = hi
    out.append(((xu >> top) & 1, -(1 << top)))
    return out


class ReramModel:
    """Command-level model of one tile. State persists like the RTL's: conductances and
    per-cell wear live in memories (kept across reset); counters and statistics live in
    registers (cleared by reset; RESET_STATS clears busy cycles, total pulses and MVMs)."""

    def __init__(self, cfg: TileConfig):
        self.cfg = c = cfg
        shape = (c.rows, c.cols, c.slices)
        self.g = np.zeros(shape, np.int64)
        self.wear = np.zeros(shape, np.int64)
        # a cell's hash input: a constant per (column, slice) lane, xor a per-row salt
        self.lane_hash = mix32(np.arange(c.cols * c.slices, dtype=np.uint64)).reshape(c.cols, c.slices)
        rows = np.arange(c.rows, dtype=np.uint64)
        fault_row = mix32(rows ^ np.uint64(R.salt_int(c.seed, R.STREAM_FAULT)))
        hf = mix32(self.lane_hash[None] ^ fault_row[:, None, None])
        on, off = R.ppm_threshold(c.stuck_on_ppm), R.ppm_threshold(c.stuck_off_ppm)
        self.stuck_on = hf < np.uint64(on)
        self.stuck_off = (hf >= np.uint64(on)) & (hf < np.uint64(on + off))
        self.cycles = 0
        self.fast = True        # tests set False to force the bit-serial path everywhere
        self._linear_cache: dict = {}
        self.reset()

    def reset(self) -> None:
        self.epoch = 0          # rows programmed since reset (salts programming errors)
        self.noise_ctr = 0      # vectors converted since reset (salts read noise)
        self.busy_cycles = self.total_pulses = self.mvms = 0
        self.max_pulses = self.over_limit = 0

    # ---- PROGRAM ------------------------------------------------------------------------
    def program(self, addr: int, weights) -> None:
        c = self.cfg
        w = _check(c.weight_bits, weights, "weights", c.cols).reshape(-1, c.cols)
        if addr < 0 or addr + len(w) > c.rows:
            raise ValueError(f"PROGRAM rows {addr}..{addr + len(w) - 1} exceed {c.rows} rows")
        F = c.g_frac_bits
        for i, row in enumerate(w):
            r = addr + i
            target = weight_levels(c, row) << F                       # (cols, slices)
            t = np.arange(1, c.verify_iters + 1, dtype=np.uint64)
            salts = np.array([R.salt_int(c.seed, R.STREAM_VARIATION, self.epoch, int(k)) for k in t],
                             np.uint64)
            row_salt = mix32(np.uint64(r) ^ salts)                       # (iters,)
            delta = bounded(mix32(self.lane_hash[None] ^ row_salt[:, None, None]), c.prog_variation)
            ok = np.abs(delta) <= c.verify_tol                        # (iters, cols, slices)
            first = np.where(ok.any(0), ok.argmax(0), c.verify_iters - 1)
            pulses = np.where(ok.any(0), first + 1, c.verify_iters)
            d = np.take_along_axis(delta, first[None], 0)[0]
            g = np.clip(target + d, 0, c.g_max)
            full = ((1 << c.cell_bits) - 1) << F
            for mask, value in ((self.stuck_on[r], full), (self.stuck_off[r], 0)):
                g = np.where(mask, value, g)
                passed = np.abs(value - target) <= c.verify_tol
                pulses = np.where(mask, np.where(passed, 1, c.verify_iters), pulses)
            self.g[r] = g
            self._linear_cache.clear()
            old = self.wear[r].copy()
            new = old + pulses
            self.wear[r] = new
            self.total_pulses += int(pulses.sum())
            self.over_limit += int(((old <= c.endurance) & (new > c.endurance)).sum())
            self.max_pulses = max(self.max_pulses, int(new.max()))
            self.epoch += 1
        lat = c.program_latency(len(w))
        self.cycles += lat
        self.busy_cycles += lat - 1

    # ---- MVM / MVM_T --------------------------------------------------------------------
    def _convert(self, sums: np.ndarray, lanes: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """ADC and shift-add. ``sums[step, vector, out, slice]`` (2**-F level units) ->
        ``y[vector, out]`` = sum over steps and slices of code x step weight x slice scale.
        Vector ``v`` uses noise counter ``noise_ctr + v``."""
        c = self.cfg
        if c.read_noise:
            J, n = sums.shape[:2]
            salt = np.array([[R.salt_int(c.seed, R.STREAM_NOISE, self.noise_ctr + v, j)
                              for v in range(n)] for j in range(J)], np.uint64)
            sums = sums + bounded(mix32(lanes[None, None] ^ salt[:, :, None, None]), c.read_noise)
        sh = c.adc_shift + c.g_frac_bits
        rnd = (1 << (sh - 1)) if sh else 0
        code = np.clip((sums + rnd) >> sh, 0, (1 << c.adc_bits) - 1)
        scale = np.int64(1) << (c.adc_shift + c.cell_bits * np.arange(c.slices, dtype=np.int64))
        return np.einsum("jnos,js->no", code, weights[:, None] * scale[None, :])

    def mvm(self, xs, transpose: bool = False, active: tuple[int, int] | None = None) -> np.ndarray:
        """``x @ W`` (or ``y @ W.T`` with ``transpose``) for each vector of ``xs``, in order.

        ``active = (n_in, n_out)`` computes only the leading inputs/outputs of a partly
        used tile: inputs beyond ``n_in`` must be zero (they add nothing to any column sum)
        and only the first ``n_out`` outputs are returned; the values are the same bits
        the full computation gives for those outputs.
        """
        c = self.cfg
        n_in, n_out = (c.cols, c.rows) if transpose else (c.rows, c.cols)
        xs = _check(c.input_bits, xs, "MVM_T inputs" if transpose else "MVM inputs", n_in)
        xs = xs.reshape(-1, n_in)
        a_in, a_out = active or (n_in, n_out)
        if a_in < n_in and np.any(xs[:, a_in:]):
            raise ValueError("inputs beyond the active rows of the tile must be zero")
        x = xs[:, :a_in]
        y = np.zeros((len(x), a_out), np.int64)
        slow = np.arange(a_out)
        if self.fast and c.read_noise == 0 and c.adc_shift == 0:
            y, slow = self._linear_columns(x, transpose, a_in, a_out)
        if len(slow):
            y[:, slow] = self._bit_serial(x, transpose, a_in, slow)
        y -= (1 << (c.weight_bits - 1)) * x.sum(axis=1, keepdims=True)
        self.noise_ctr += len(xs)
        self.mvms += len(xs)
        lat = (c.mvm_t_latency if transpose else c.mvm_latency)(len(xs))
        self.cycles += lat
        self.busy_cycles += lat - 1
        return wrap(y, c.out_width)

    def _linear_columns(self, x, transpose, a_in, a_out):
        """Exact shortcut for outputs whose conversions are all linear.

        Split every conductance as ``g = lv * 2**F + d`` with ``lv`` the nearest level.
        With no read noise and a unit ADC LSB, a column sum converts to
        ``A + floor((E + 2**(F-1)) / 2**F)`` where ``A = sum(digit * lv)`` and
        ``E = sum(digit * d)``; when ``|E|`` cannot reach half a level (bounded by
        ``max digit * sum |d|`` over the lane) and ``A`` cannot clip, the code is exactly
        ``A``, and summing over input steps and slices gives ``x @ sum_s lv_s 2**(s*cb)``.
        Returns the outputs of such columns and the indices of the others.
        """
        key = (transpose, a_in, a_out)
        if key not in self._linear_cache:
            self._linear_cache[key] = self._linear_weights(transpose, a_in, a_out)
        cols, weff, ft = self._linear_cache[key]
        y = np.zeros((len(x), a_out), np.int64)
        y[:, cols] = (x.astype(ft) @ weff).astype(np.int64)
        return y, np.flatnonzero(~cols)

    def _linear_weights(self, transpose, a_in, a_out):
        """(linear-column mask, their effective integer weights as floats, float type)."""
        c = self.cfg
        F, dmax = c.g_frac_bits, (1 << c.dac_bits) - 1
        g = self.g.transpose(1, 0, 2) if transpose else self.g
        g = g[:a_in, :a_out]
        lv = (g + ((1 << F) >> 1)) >> F
        d = g - (lv << F)
        emax = dmax * np.abs(d).sum(axis=0)                               # (out, slices)
        ok = (emax <= (1 << F >> 1) - 1) if F else (emax == 0)
        if a_in * dmax * int(lv.max(initial=0)) > (1 << c.adc_bits) - 1:
            ok[:] = False                                               # could clip
        cols = ok.all(axis=1)
        scale = np.int64(1) << (c.cell_bits * np.arange(c.slices, dtype=np.int64))
        weff = (lv[:, cols] * scale).sum(axis=-1)                        # (in, linear cols)
        bound = a_in * (1 << (c.input_bits - 1)) * (1 << c.weight_bits)
        ft = np.float32 if bound < (1 << 24) else np.float64   # exact integer sums in BLAS
        return cols, weff.astype(ft), ft

    def _bit_serial(self, x, transpose, a_in, cols):
        """Outputs ``cols``: every input step and slice through the ADC, as the RTL does."""
        c = self.cfg
        g = self.g.transpose(1, 0, 2) if transpose else self.g             # (in, out, slices)
        g = g[:a_in, cols]
        # digit x conductance sums are small integers: exact in float32 below 2**24
        exact32 = a_in * ((1 << c.dac_bits) - 1) * c.g_max < (1 << 24)
        ft = np.float32 if exact32 else np.float64
        gf = g.reshape(a_in, -1).astype(ft)
        lanes = mix32((np.asarray(cols, np.uint64)[:, None] * np.uint64(c.slices)
                       + np.arange(c.slices, dtype=np.uint64)[None, :])
                      ^ np.uint64(1 << 31 if transpose else 0))
        steps = input_digits(c, x)
        digits = np.concatenate([d for d, _ in steps]).astype(ft)        # all steps, one GEMM
        it = np.int32 if exact32 else np.int64
        sums = (digits @ gf).astype(it).reshape(len(steps), len(x), len(cols), c.slices)
        weights = np.array([w for _, w in steps], np.int64)
        return self._convert(sums, lanes, weights)

    # ---- statistics ----------------------------------------------------------------------
    def read_stats(self) -> dict:
        self.cycles += self.cfg.read_stats_latency()
        stats = {"busy_cycles": self.busy_cycles, "total_pulses": self.total_pulses,
                 "max_pulses": self.max_pulses, "over_limit": self.over_limit, "mvms": self.mvms}
        self.busy_cycles += self.cfg.read_stats_latency() - 1
        return stats

    def reset_stats(self) -> None:
        self.cycles += self.cfg.reset_stats_latency()
        self.busy_cycles = self.total_pulses = self.mvms = 0

    # ---- conveniences ---------------------------------------------------------------------
    def run_ops(self, ops) -> list:
        """Execute ``(TileOp, addr, data)`` commands as the RTL would; returns, per command,
        None, the output vectors (MVM/MVM_T) or the statistics (READ_STATS)."""
        from hw.reram import TileOp
        outs = []
        for op, addr, payload in ops:
            if op == TileOp.PROGRAM:
                self.program(addr, payload)
                outs.append(None)
            elif op in (TileOp.MVM, TileOp.MVM_T):
                outs.append(self.mvm(payload, transpose=op == TileOp.MVM_T))
            elif op == TileOp.READ_STATS:
                outs.append(self.read_stats())
            elif op == TileOp.RESET_STATS:
                self.reset_stats()
                outs.append(None)
            else:                                   # NOP (and an empty command): one cycle
                self.cycles += 1
                outs.append(None)
        return outs

    def weights_ideal(self) -> np.ndarray:
        """Weights as the ideal integers they encode (reads the programmed levels back)."""
        c = self.cfg
        lv = (self.g + (1 << c.g_frac_bits >> 1)) >> c.g_frac_bits
        u = (lv << (c.cell_bits * np.arange(c.slices))).sum(-1)
        return u - (1 << (c.weight_bits - 1))
