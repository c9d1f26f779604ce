"""Bit-exact numpy model of the ReRAM tile (:mod:`hw.reram`).

Same seeds, same counters, same integers as the RTL: programmed conductances (with
write-verify and stuck-at faults), pulse counts, ADC codes with read noise, outputs and
statistics. The encoding is documented on :class:`hw.reram.TileConfig`.

The same class is the functional model of the options the RTL does not implement
(:meth:`hw.reram.TileConfig.rtl_refusal`): Gaussian device models
(:mod:`hw.reram.device`: conductance-dependent programming error and relaxation, read
noise, finite on/off ratio, retention and drift by :meth:`ReramModel.age`), differential
encoding, weight-calibrated ADC ranges and ADC offset/DNL/comparator noise. Static draws
(programming, relaxation, retention, ADC errors) come from the same counter-based
generator; per-conversion Gaussian draws from torch's generator seeded per call
(:meth:`ReramModel._convert_analog`). Either way a run is deterministic.
"""

from __future__ import annotations

import numpy as np
import torch

from hw.reram import TileConfig
from hw.reram import rng as R
from sw.golden.systolic import wrap

__all__ = ["mix32", "gauss", "effective", "ReramModel", "ExactPlan", "input_digits", "weight_levels"]

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


def gauss(h, mult) -> np.ndarray:
    """Gaussian draw of standard deviation ``sigma`` codes from hash words ``h``, with
    ``mult = gauss_multiplier(sigma)`` (broadcast against ``h``); the method is
    documented in :mod:`hw.reram.rng` (Irwin-Hall of four 16-bit uniforms)."""
    h = np.asarray(h, dtype=np.uint64)
    h2 = mix32(h ^ np.uint64(R.STREAM_GAUSS))
    m16 = np.uint64(0xFFFF)
    s = ((h & m16) + (h >> np.uint64(16)) + (h2 & m16) + (h2 >> np.uint64(16))).astype(np.int64)
    s -= 2 * 0xFFFF
    return (s * np.asarray(mult, np.int64) + (1 << (R.GAUSS_SHIFT - 1))) >> R.GAUSS_SHIFT


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
    """Weights ``(..., n)`` -> cell levels ``(..., n, lanes)``. Offset encoding: the
    slices of ``w + 2**(weight_bits-1)``, least significant first. Differential: the
    slices of ``max(w, 0)`` (the positive cells), then those of ``max(-w, 0)``."""
    s = np.arange(cfg.slices, dtype=np.int64) * cfg.cell_bits
    mask = (1 << cfg.cell_bits) - 1
    w = np.asarray(w, np.int64)
    if cfg.differential:
        return np.concatenate([(np.maximum(w, 0)[..., None] >> s) & mask,
                               (np.maximum(-w, 0)[..., None] >> s) & mask], axis=-1)
    return ((w + (1 << (cfg.weight_bits - 1)))[..., None] >> s) & mask


def effective(cfg: TileConfig, g: np.ndarray) -> np.ndarray:
    """Per-lane conductances ``(..., lanes)`` -> what each slice's ADC sees
    ``(..., slices)``: the cells themselves, or a differential pair's difference."""
    if cfg.differential:
        return g[..., :cfg.slices] - g[..., cfg.slices:]
    return g


def input_digits(cfg: TileConfig, x) -> list[tuple[np.ndarray, int]]:
    """Bit-serial DAC schedule: ``[(digits, weight), ...]`` per input step. ``x`` is a numpy
    array or a torch tensor of integers (any dtype holding them); digits come back as the
    same kind of array."""
    xu = (x.to(torch.int64) if isinstance(x, torch.Tensor) else np.asarray(x, np.int64)) \
        & ((1 << cfg.input_bits) - 1)
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
    registers (cleared by reset; RESET_STATS clears busy cycles, total pulses and MVMs).

    ``g`` and ``wear`` are ``(rows, cols, lanes)``: one entry per physical cell, lanes in
    the order of :func:`weight_levels`. Functional-model state beyond the RTL's:
    ``adc_clips`` (conversions that saturated the ADC), ``age_s`` (seconds since
    programming that :meth:`age` applied)."""

    def __init__(self, cfg: TileConfig):
        self.cfg = c = cfg
        self.device = c.device_model
        shape = (c.rows, c.cols, c.lanes)
        self.g = np.zeros(shape, np.int64)
        self.wear = np.zeros(shape, np.int64)
        # a cell's hash input: a constant per (column, lane) lane, xor a per-row salt
        self.lane_hash = mix32(np.arange(c.cols * c.lanes, dtype=np.uint64)).reshape(c.cols, c.lanes)
        rows = np.arange(c.rows, dtype=np.uint64)
        fault_row = mix32(rows ^ np.uint64(R.salt_int(c.seed, R.STREAM_FAULT)))
        hf = mix32(self.lane_hash[None] ^ fault_row[:, None, None])
        on, off = R.ppm_threshold(c.stuck_on_ppm), R.ppm_threshold(c.stuck_off_ppm)
        self.stuck_on = hf < np.uint64(on)
        self.stuck_off = (hf >= np.uint64(on)) & (hf < np.uint64(on + off))
        self.cycles = 0
        self.fast = True        # tests set False to force the bit-serial path everywhere
        self._plans: dict = {}
        self.adc_clips = 0
        self.age_s = 0.0
        self._static: dict = {}         # per-tile static ADC errors (functional options)
        if self.device.kind == "gaussian":
            pulse, relax = c.gauss_multipliers()
            self.pulse_mult = np.full(1 << c.cell_bits, pulse, np.int64)
            self.relax_mult = np.array(relax, np.int64)
            self.read_sigma_codes = (self.device.read_sigma * self.device.g_max_us
                                     * (1 << c.g_frac_bits) / self.device.step_us(c.cell_bits))
            self.target = np.zeros(shape, np.int64)        # programmed levels << F
            self.g_prog = np.zeros(shape, np.int64)        # conductances at t0
            self.row_epoch = np.zeros(c.rows, np.int64)    # each row's programming epoch
        self.levels = np.zeros(shape, np.int64)     # levels written (digital, for calibration)
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
        gauss_dev = self.device.kind == "gaussian"
        for i, row in enumerate(w):
            r = addr + i
            lv = weight_levels(c, row)                                  # (cols, lanes)
            target = lv << F
            t = np.arange(1, c.verify_iters + 1, dtype=np.uint64)
            salts = np.array([R.salt_int(c.seed, R.STREAM_VARIATION, self.epoch, int(k)) for k in t],
                             np.uint64)
            row_salt = mix32(np.uint64(r) ^ salts)                       # (iters,)
            h = mix32(self.lane_hash[None] ^ row_salt[:, None, None])
            delta = gauss(h, self.pulse_mult[lv]) if gauss_dev else bounded(h, c.prog_variation)
            ok = np.abs(delta) <= c.verify_tol                        # (iters, cols, lanes)
            first = np.where(ok.any(0), ok.argmax(0), c.verify_iters - 1)
            pulses = np.where(ok.any(0), first + 1, c.verify_iters)
            d = np.take_along_axis(delta, first[None], 0)[0]
            if gauss_dev:       # relaxation right after the last verify (not verified)
                rs = mix32(np.uint64(r) ^ np.uint64(R.salt_int(c.seed, R.STREAM_RELAX, self.epoch)))
                d = d + gauss(mix32(self.lane_hash ^ rs), self.relax_mult[lv])
            g = np.clip(target + d, c.g_min_code, c.g_max)
            full = ((1 << c.cell_bits) - 1) << F
            for mask, value in ((self.stuck_on[r], full), (self.stuck_off[r], 0)):
                g = np.where(mask, value, g)
                passed = np.abs(value - target) <= c.verify_tol
                pulses = np.where(mask, np.where(passed, 1, c.verify_iters), pulses)
            self.g[r] = g
            if gauss_dev:
                self.target[r], self.g_prog[r], self.row_epoch[r] = target, g, self.epoch
            self.levels[r] = lv
            self._plans.clear()
            old = self.wear[r].copy()
            new = old + pulses
            self.wear[r] = new
            self.total_pulses += int(pulses.sum())
            self.over_limit += int(((old <= c.endurance) & (new > c.endurance)).sum())
            self.max_pulses = max(self.max_pulses, int(new.max()))
            self.epoch += 1
        self.age_s = 0.0
        lat = c.program_latency(len(w))
        self.cycles += lat
        self.busy_cycles += lat - 1

    # ---- retention and drift (functional model only) --------------------------------------
    def age(self, t_s: float) -> None:
        """Conductances ``t_s`` seconds after programming (Gaussian devices whose model
        drifts, :attr:`hw.reram.device.DeviceModel.drifts`; others do not change).

        Each cell keeps its state at ``t0`` (after relaxation) and one fixed standard
        normal draw ``z`` and exponent ``nu`` per programming, so a cell ages
        consistently: ``G(t) = (G(t0) + z sqrt(sigma(G,t)^2 - sigma(G,t0)^2)) (t/t0)^-nu``
        in microsiemens (``G`` includes ``G_min``), back to codes and clipped like a
        freshly programmed cell. Stuck cells stay stuck. One age applies to every row (rows
        programmed later count as programmed at the same time)."""
        dev, c = self.device, self.cfg
        if t_s < 0:
            raise ValueError(f"age: t_s must be >= 0, not {t_s}")
        if not dev.drifts:
            self.age_s = float(t_s)
            return
        F = c.g_frac_bits
        step = dev.step_us(c.cell_bits)
        t0 = dev.first_time()
        t = max(float(t_s), t0)
        lv_target = self.target / (1 << F)
        g_us = dev.level_us(c.cell_bits, self.g_prog / (1 << F))
        tgt_us = dev.level_us(c.cell_bits, lv_target)
        extra = np.sqrt(np.maximum(dev.sigma_us(tgt_us, t) ** 2 - dev.sigma_us(tgt_us, t0) ** 2, 0))
        salt = mix32(np.arange(c.rows, dtype=np.uint64)[:, None, None]
                     ^ np.uint64(R.salt_int(c.seed, R.STREAM_DRIFT))
                     ^ (self.row_epoch.astype(np.uint64)[:, None, None] * np.uint64(R.GOLDEN)))
        h = mix32(self.lane_hash[None] ^ salt)
        unit = R.gauss_multiplier(1 << 16)                       # z in 1/65536 units
        z = gauss(h, unit) / 65536.0
        nu = dev.drift_nu + dev.drift_nu_std * gauss(mix32(h ^ np.uint64(R.STREAM_DRIFT)), unit) / 65536.0
        g_t = (g_us + z * extra) * (t / dev.drift_t0_s) ** (-nu)
        codes = np.rint((g_t - dev.g_min_us()) / step * (1 << F)).astype(np.int64)
        g = np.clip(codes, c.g_min_code, c.g_max)
        full = ((1 << c.cell_bits) - 1) << F
        g = np.where(self.stuck_on, full, np.where(self.stuck_off, 0, g))
        self.g = g
        self._plans.clear()
        self.age_s = float(t_s)

    # ---- ADC ranges ------------------------------------------------------------------------
    def adc_shifts(self, transpose: bool, n_steps: int) -> np.ndarray:
        """ADC LSB exponents ``(steps, slices)`` of one direction: the configuration's
        worst case per step kind, or with ``adc_calibration="weights"`` each slice's and
        step kind's from the programmed levels (largest column sum x largest digit)."""
        c = self.cfg
        if c.adc_calibration == "worst":
            return np.array([[c.step_adc_shift(j)] * c.slices for j in range(n_steps)], np.int64)
        key = ("cal", transpose)
        if key not in self._plans:
            lv = self.levels.transpose(1, 0, 2) if transpose else self.levels                 # (in, out, lanes)
            if c.differential:
                pos, neg = lv[..., :c.slices], lv[..., c.slices:]
                eff = pos - neg
                worst = np.maximum(np.maximum(eff, 0).sum(0), np.maximum(-eff, 0).sum(0))
            else:
                worst = lv.sum(0)                                            # (out, slices)
            col = worst.max(axis=0, initial=0)                               # (slices,)
            dmax = (1 << c.dac_bits) - 1
            mag = np.array([c.shift_for(max(int(v) * dmax, 1)) for v in col], np.int64)
            sign = np.array([c.shift_for(max(int(v), 1)) for v in col], np.int64)
            self._plans[key] = (mag, sign)
        mag, sign = self._plans[key]
        return np.stack([sign if j == n_steps - 1 else mag for j in range(n_steps)])

    # ---- MVM / MVM_T --------------------------------------------------------------------
    def _convert(self, sums: np.ndarray, lanes: np.ndarray, weights: np.ndarray,
                 transpose: bool = False, digits=None) -> np.ndarray:
        """ADC and shift-add. ``sums[step, vector, out, slice]`` (2**-F level units) ->
        ``y[vector, out]`` = sum over steps and slices of code x step weight x slice scale.
        Vector ``v`` uses noise counter ``noise_ctr + v``. ``digits[step, vector, in]``
        (the DAC inputs) set a Gaussian device's read-noise level."""
        c = self.cfg
        J, n = sums.shape[:2]
        if c.read_noise:
            salt = np.array([[R.salt_int(c.seed, R.STREAM_NOISE, self.noise_ctr + v, j)
                              for v in range(n)] for j in range(J)], np.uint64)
            h = mix32(lanes[None, None] ^ salt[:, :, None, None])
            sums = sums + bounded(h, c.read_noise)
        if self._read_sigma() or c.adc_nonideal:
            return self._convert_analog(sums, lanes, weights, transpose, digits)
        # each input step and slice converts with its own LSB
        shift = self.adc_shifts(transpose, J)                                  # (J, S)
        sh = (shift + c.g_frac_bits)[:, None, None, :]
        rnd = np.where(sh > 0, np.int64(1) << np.maximum(sh - 1, 0), 0)
        lo, hi = c.adc_code_range
        raw = (sums + rnd) >> sh
        code = np.clip(raw, lo, hi)
        self.adc_clips += int((raw != code).sum())
        scale = np.int64(1) << (shift + c.cell_bits * np.arange(c.slices, dtype=np.int64)[None, :])
        return np.einsum("jnos,js->no", code, weights[:, None] * scale)

    def _convert_analog(self, sums, lanes, weights, transpose, digits) -> np.ndarray:
        """:meth:`_convert` with the functional model's analog options: Gaussian per-read
        noise and ADC offset, threshold errors (DNL/INL) and comparator noise.

        Read noise: each driven cell fluctuates, so a column sum's sigma grows with
        sqrt(sum of digit^2) (both cells of a differential pair count); it is analog (not
        rounded to codes). The ADC sees ``v = sum / LSB + offset + noise`` (LSB units)
        and returns the code ``k`` whose thresholds ``t_k <= v < t_(k+1)`` hold, with
        ``t_k = k - 1/2 + e_k``; offsets and ``e_k`` are static per ADC (counter-based
        draws from the tile seed), ``e_k`` clipped to +-0.45 LSB (monotonic codes). With
        no option set this is the ideal transfer function of :meth:`_convert`. Computed
        in float32 (sums below 2**24 codes are exact). Per-conversion draws come from
        torch's CPU generator seeded by (tile seed, read counter, direction, outputs):
        deterministic for the same sequence of calls, but, unlike the counter-based
        draws, dependent on how vectors are grouped into calls."""
        c = self.cfg
        J, n, n_out, S = sums.shape
        gen = torch.Generator().manual_seed(
            R.salt_int(c.seed, R.STREAM_NOISE, self.noise_ctr, 2 * n_out + int(transpose)))
        z = torch.from_numpy(np.ascontiguousarray(sums)).to(torch.float32)
        if self._read_sigma():
            d2 = (torch.as_tensor(digits, dtype=torch.float32) ** 2).sum(-1) \
                * c.cells_per_weight_slice
            noise = torch.randn(sums.shape, generator=gen, dtype=torch.float32)
            noise *= (self._read_sigma() * d2.sqrt())[:, :, None, None]
            z += noise
        shift = self.adc_shifts(transpose, J)                                  # (J, S)
        z *= torch.from_numpy((2.0 ** -(shift + c.g_frac_bits)).astype(np.float32))[:, None, None, :]
        code = self.adc_codes(z, transpose, gen)
        lo, hi = c.adc_code_range
        # shift-add: over slices in float32 while exact (codes x powers of two below 2**24),
        # then over input steps in float64
        scale = shift + c.cell_bits * np.arange(c.slices, dtype=np.int64)[None, :]   # (J, S)
        per_step = float(max(abs(lo), hi)) * float((2.0 ** scale).sum(1).max())
        ft = torch.float32 if per_step < 2 ** 24 else torch.float64
        ys = (code.to(ft) * torch.from_numpy(2.0 ** scale).to(ft)[:, None, None, :]).sum(-1)
        y = (ys.to(torch.float64) * torch.from_numpy(weights.astype(np.float64))[:, None, None]).sum(0)
        return y.round().to(torch.int64).numpy()

    def adc_codes(self, v: torch.Tensor, transpose: bool, gen=None) -> torch.Tensor:
        """The ADCs' codes for inputs ``v[..., out, slice]`` in LSB units (float32): offset,
        threshold errors and comparator noise as configured, clipped to the code range
        (clipped conversions counted); see :meth:`_convert_analog`."""
        c = self.cfg
        n_out, S = v.shape[-2:]
        z = v.clone()
        lo, hi = c.adc_code_range
        if c.adc_offset_mlsb or c.adc_noise_mlsb:
            offset, _ = self._adc_errors(transpose, n_out)
            z += torch.from_numpy(offset)
            if c.adc_noise_mlsb:
                if gen is None:
                    gen = torch.Generator().manual_seed(
                        R.salt_int(c.seed, R.STREAM_ADC, self.noise_ctr, int(transpose)))
                z += torch.randn(z.shape, generator=gen, dtype=torch.float32) \
                    * (c.adc_noise_mlsb / 1000.0)
        code = (z + 0.5).floor_()
        if c.adc_dnl_mlsb:
            _, thr = self._adc_errors(transpose, n_out)                     # (out, S, codes+1)
            thr = torch.from_numpy(thr)
            idx = (code.clamp(lo, hi + 1) - lo).to(torch.int64)
            o, s_ = torch.arange(n_out)[:, None], torch.arange(S)[None, :]
            e_here = thr[o, s_, idx]                                      # threshold of code
            e_next = thr[o, s_, (idx + 1).clamp(max=hi - lo + 1)]
            down = (z < code - 0.5 + e_here).to(code.dtype)      # the two cannot both hold:
            up = (z >= code + 0.5 + e_next).to(code.dtype)       # |e| <= 0.45
            code += up - down
        zmin, zmax = torch.aminmax(code)
        if zmin < lo or zmax > hi:
            self.adc_clips += int((code < lo).sum() + (code > hi).sum())
            code.clamp_(lo, hi)
        return code

    def _adc_errors(self, transpose: bool, n_out: int):
        """Static ADC errors of one direction, in LSB: offsets ``(n_out, slices)`` and
        threshold errors ``(n_out, slices, codes + 1)`` (entry ``k - lo`` moves code k's
        lower threshold; the first and last entries are unused)."""
        key = ("adc", transpose, n_out)
        if key not in self._static:
            c = self.cfg
            lanes = mix32((np.arange(n_out, dtype=np.uint64)[:, None] * np.uint64(c.slices)
                           + np.arange(c.slices, dtype=np.uint64)[None, :])
                          ^ np.uint64(1 << 31 if transpose else 0))
            unit = R.gauss_multiplier(1 << 16)
            base = np.uint64(R.salt_int(c.seed, R.STREAM_ADC))
            offset = (gauss(mix32(lanes ^ base), unit) / 65536.0 * c.adc_offset_mlsb / 1000.0)
            lo, hi = c.adc_code_range
            salts = mix32(np.arange(hi - lo + 2, dtype=np.uint64) * np.uint64(R.GOLDEN) ^ base)
            e = gauss(mix32(lanes[..., None] ^ salts), unit) / 65536.0 * c.adc_dnl_mlsb / 1000.0
            self._static[key] = (offset.astype(np.float32),
                                 np.clip(e, -0.45, 0.45).astype(np.float32))
        return self._static[key]

    def _read_sigma(self) -> float:
        return getattr(self, "read_sigma_codes", 0.0)

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
        plan = self.exact_plan(transpose, a_in, a_out) if self.fast else None
        if plan is not None:
            y = plan.run(torch.from_numpy(x)).to(torch.int64).numpy()
        else:
            y = self._bit_serial(x, transpose, a_in, np.arange(a_out))
            if not c.differential:
                y -= (1 << (c.weight_bits - 1)) * x.sum(axis=1, keepdims=True)
        self.account_mvm(len(xs), transpose)
        return wrap(y, c.out_width)

    def account_mvm(self, n: int, transpose: bool) -> None:
        """Advance the counters an MVM (or MVM_T) of ``n`` vectors advances."""
        c = self.cfg
        self.noise_ctr += n
        self.mvms += n
        lat = (c.mvm_t_latency if transpose else c.mvm_latency)(n)
        self.cycles += lat
        self.busy_cycles += lat - 1

    def exact_plan(self, transpose: bool, a_in: int, a_out: int) -> "ExactPlan | None":
        """The tile's MVM as one integer matrix plus sparse rounding corrections, or None
        where that is not exact (read noise, an ADC LSB above one level, a column sum that
        could clip, or an output that could wrap). Cached until the next PROGRAM.

        Split every conductance as ``g = lv * 2**F + d`` with ``lv`` the nearest level.
        With no read noise and a unit ADC LSB, a column sum ``S = 2**F A + E``
        (``A = sum(digit * lv)``, ``E = sum(digit * d)``) converts to
        ``A + floor((E + 2**(F-1)) / 2**F)`` as long as it cannot clip. The ``A`` parts
        summed over input steps, slices and the offset are ``x @ w`` with
        ``w = sum_s lv_s 2**(s*cell_bits) - 2**(weight_bits-1)``; the rounding term is
        zero for a lane whose ``max digit * sum |d|`` stays below half a level, and is
        computed per conversion, as the ADC does, for the few lanes where it may not.
        """
        key = (transpose, a_in, a_out)
        if key not in self._plans:
            self._plans[key] = self._make_plan(transpose, a_in, a_out)
        return self._plans[key]

    def _make_plan(self, transpose, a_in, a_out):
        c = self.cfg
        if (c.read_noise or self._read_sigma() or c.adc_nonideal
                or self.adc_shifts(transpose, 2).any()):
            return None
        F, dmax = c.g_frac_bits, (1 << c.dac_bits) - 1
        rnd = (1 << F) >> 1
        g = effective(c, (self.g.transpose(1, 0, 2) if transpose else self.g)[:a_in, :a_out])
        lo, hi = c.adc_code_range
        if ((a_in * dmax * int(g.max(initial=0)) + rnd) >> F > hi
                or (a_in * dmax * int(g.min(initial=0)) + rnd) >> F < lo):
            return None                                                 # could clip
        lv = (g + rnd) >> F
        d = g - (lv << F)
        scale = np.int64(1) << (c.cell_bits * np.arange(c.slices, dtype=np.int64))
        bias = 0 if c.differential else 1 << (c.weight_bits - 1)
        w = (lv * scale).sum(axis=-1) - bias                             # (in, out)
        emax = dmax * np.abs(d).sum(axis=0)                             # (out, slices)
        cols = np.flatnonzero((emax > rnd - 1).any(axis=1)) if F else np.zeros(0, np.int64)
        rows = np.flatnonzero((d[:, cols] != 0).any(axis=(1, 2)))
        # |y| <= |x @ w| + |correction|: the correction per conversion is at most
        # ceil((emax + rnd) / 2**F), weighted by the input steps (sum |step| = 2**ib - 1)
        # and the slice scales
        corr = ((emax.max(axis=0, initial=0) + rnd + (1 << F) - 1) >> F) * scale
        bound = (a_in * (1 << (c.input_bits - 1)) * int(np.abs(w).max(initial=0))
                 + ((1 << c.input_bits) - 1) * int(corr.sum()))
        if bound >= 1 << (c.out_width - 1):
            return None                                                 # could wrap
        ft = np.float32 if bound < (1 << 24) else np.float64    # exact integer sums in BLAS
        steps = np.array([wt for _, wt in input_digits(c, np.zeros(1, np.int64))], np.int64)
        return ExactPlan(self.cfg, w.astype(ft), rows, cols, d[rows][:, cols], steps, scale)

    def _bit_serial(self, x, transpose, a_in, cols):
        """Outputs ``cols``: every input step and slice through the ADC, as the RTL does."""
        c = self.cfg
        g = self.g.transpose(1, 0, 2) if transpose else self.g             # (in, out, lanes)
        g = effective(c, g[:a_in, cols])                                   # (in, out, slices)
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
        return self._convert(sums, lanes, weights, transpose,
                             digits.reshape(len(steps), len(x), a_in))

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

    COUNTERS = ("epoch", "noise_ctr", "busy_cycles", "total_pulses", "mvms", "max_pulses",
                "over_limit", "cycles")

    def counters(self) -> dict:
        """The register state that is not the crossbar (for checkpoints)."""
        return {k: int(getattr(self, k)) for k in self.COUNTERS}

    def load_counters(self, d: dict) -> None:
        for k in self.COUNTERS:
            setattr(self, k, int(d[k]))

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
        lv = effective(c, (self.g + (1 << c.g_frac_bits >> 1)) >> c.g_frac_bits)
        u = (lv << (c.cell_bits * np.arange(c.slices))).sum(-1)
        return u - (0 if c.differential else 1 << (c.weight_bits - 1))


class ExactPlan:
    """One tile's MVM in one direction as ``x @ w`` plus rounding corrections on the lanes
    that need them (see :meth:`ReramModel.exact_plan`), in torch on the CPU.

    ``w`` is a float tensor whose integer sums are exact for every input the tile
    accepts; the corrections work on integer digit x conductance-error sums (exact in
    float32: a few hundred at most) and integer ADC codes.
    """

    def __init__(self, cfg, w, rows, cols, d, steps, scale):
        self.cfg = cfg
        self.w = torch.from_numpy(w)
        self.rows, self.cols = torch.from_numpy(rows), torch.from_numpy(cols)
        self.d = torch.from_numpy(d.reshape(len(rows), len(cols) * cfg.slices).astype(np.float32))
        self.weights = torch.from_numpy(steps[:, None] * scale[None, :])          # (steps, S)

    def correction(self, x: torch.Tensor) -> torch.Tensor:
        """Rounding corrections ``(vectors, len(cols))`` (int64) for integer inputs ``x``."""
        F = self.cfg.g_frac_bits
        digits = torch.stack([dg for dg, _ in input_digits(self.cfg, x[:, self.rows])])
        E = (digits.to(torch.float32) @ self.d).to(torch.int64)            # (steps, n, cols*S)
        code = (E + ((1 << F) >> 1)) >> F                                     # floor, as the ADC
        J, n = code.shape[:2]
        code = code.view(J, n, len(self.cols), -1) * self.weights[:, None, None, :]
        return code.sum(dim=(0, 3))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` integer-valued (any numeric dtype, CPU) -> outputs in ``w``'s float type."""
        y = x.to(self.w.dtype) @ self.w
        if len(self.cols):
            y[:, self.cols] += self.correction(x).to(y.dtype)
        return y
