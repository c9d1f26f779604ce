"""`TileConfig`: one ReRAM tile (crossbar + DAC/ADC + controller), and its cycle model."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from .device import DeviceModel, device_model

__all__ = ["TileConfig", "ENCODINGS", "ADC_CALIBRATIONS"]

#: Weight encodings (see :class:`TileConfig`).
ENCODINGS = ("offset", "differential")
#: ADC full-scale choices (see :class:`TileConfig`).
ADC_CALIBRATIONS = ("worst", "weights")


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"TileConfig.{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"TileConfig.{name} must be in [{lo}, {hi}], not {value}")


@dataclass(frozen=True)
class TileConfig:
    """A ReRAM tile: a ``rows x cols`` crossbar of signed weights, bit-sliced over cells.

    Encoding (shared bit for bit by gateware and :mod:`sw.golden.reram`)
    ---------------------------------------------------------------------
    *Weights* use **offset encoding** (``encoding="offset"``, the default): a signed
    ``weight_bits`` weight ``w`` is stored as ``u = w + 2**(weight_bits-1)`` (unsigned),
    cut into ``slices = weight_bits/cell_bits`` slices of ``cell_bits`` bits, slice ``s``
    on its own crossbar (ISAAC stores weights biased the same way and removes the bias
    digitally). The bias is removed after the ADCs by subtracting
    ``2**(weight_bits-1) * sum(x)``, computed digitally from the input. Every cell of the
    most significant slice of a small weight sits mid-range.

    **Differential encoding** (``encoding="differential"``) stores ``w = w+ - w-`` on a
    pair of cells per slice (``w+ = max(w, 0)``, ``w- = max(-w, 0)``, each cut into the
    same ``slices``): twice the crossbars, no bias, and a small weight leaves both cells
    of its upper slices at level 0. The pair's column currents are subtracted before the
    ADC, which is then signed: codes ``-2**(adc_bits-1) .. 2**(adc_bits-1)-1``.

    *Inputs* are applied bit-serially through ``dac_bits`` DACs: the ``input_bits - 1``
    magnitude bits of the two's complement input in ``dac_bits`` chunks, LSB first, then
    the sign bit alone with weight ``-2**(input_bits-1)``. So one MVM takes
    ``input_steps = ceil((input_bits-1)/dac_bits) + 1`` analog reads.

    *Conductance* of a cell is a fixed-point number of levels with ``g_frac_bits``
    fraction bits: ``level * 2**g_frac_bits + delta`` (clipped to ``[0, g_max]``), where
    ``delta`` is the programming error left after write-verify (below) and ``level`` is
    the cell's slice of ``u`` (stuck cells ignore it).

    *ADC*: each column sum (one per slice, column and input step) is a sum of digit x
    conductance, plus optional read noise. The ADC has ``adc_bits`` bits and a
    power-of-two LSB of ``2**adc_shift`` levels, chosen as the smallest that covers
    ``adc_range`` (default: the largest possible sum, i.e. no clipping). Transfer
    function: ``code = clip(round_half_up(sum / 2**(adc_shift + g_frac_bits)), 0,
    2**adc_bits - 1)``; the digital back end shift-adds ``code << adc_shift`` over slices
    and input steps. With no non-idealities and ``adc_shift == 0`` the tile computes the
    exact integer product ``x @ W``. ``adc_calibration="weights"`` instead sets each
    slice's and input step kind's full scale from the programmed weights' own largest
    column sum (``max over columns of sum(level) x largest digit``, computed digitally from
    the levels as rows are written: one add per cell, no analog read), so a slice whose
    columns hold small levels gets a finer LSB; conversions that clip (noise pushed a
    sum past the calibrated range) are counted (:attr:`sw.golden.reram.ReramModel.adc_clips`).

    *Device*: ``device`` names a cell model in :data:`hw.reram.device.DEVICES` (physics
    with sources): ``uniform`` (default; the bounded errors below), ``ideal``, or measured
    Gaussian models such as ``wan2022``. Only ``ideal`` and ``uniform`` run on the RTL.

    Attributes
    ----------
    rows, cols:
        Crossbar size (ISAAC: 128 x 128). ``MVM`` takes ``rows`` inputs and returns
        ``cols`` outputs (``x @ W``); ``MVM_T`` takes ``cols`` and returns ``rows``
        (``y @ W.T``).
    cell_bits:
        Bits per cell, 1..4 (ISAAC: 2).
    weight_bits:
        Signed weight width; a multiple of ``cell_bits`` (ISAAC: 16; HpT's frozen weights
        are quantized to 8 here).
    input_bits, dac_bits:
        Signed input width and DAC resolution (ISAAC: 16-bit inputs, 1-bit DACs).
    adc_bits, adc_range:
        ADC resolution and full-scale column sum in level x digit units (``None``: the
        largest possible sum). ISAAC uses 8 bits for 128 rows of 2-bit cells with 1-bit
        DACs, saving one bit with its weight-flipping encoding; without that trick the
        same column needs 9 bits to be lossless, hence the default 9.
    write_latency:
        Cycles of one program-and-verify pulse (1 cycle = 1 controller clock; with a
        1 GHz clock the default 100 matches the ~100 ns SET/RESET pulses assumed by
        NeuroSim-style estimates; an assumption, override it).
    verify_iters:
        Maximum write-verify iterations per cell; a cell stops receiving pulses once its
        error is within ``verify_tol``. Latency always budgets all iterations.
    endurance:
        Write pulses a cell survives (assumption: 1e8, inside the 1e6..1e12 range that
        Wong et al., Proc. IEEE 2012, report for metal-oxide ReRAM).
    g_frac_bits:
        Fraction bits of the conductance model (resolution of variation and noise).
    prog_variation, verify_tol:
        Bound of the per-pulse programming error and the verify acceptance window, both
        in ``2**-g_frac_bits`` levels; errors are drawn uniformly from the tile's
        seeded counter-based generator. Default: ±1/16 level per pulse (about 2 % of a
        2-bit cell's range, an assumption at the scale write-verify schemes report), and
        verify until the cell sits on its level at the model's 1/16 resolution, at most
        8 pulses (about 4 % of cells end one step off). ``hpt fidelity`` shows what
        larger errors cost: bit slicing weights them by up to 2**(weight_bits-1).
    stuck_on_ppm, stuck_off_ppm:
        Stuck-at-on (``g_max``) / stuck-at-off (0) fault rates in parts per million,
        fixed per cell by ``seed`` (default 0: fault studies opt in).
    read_noise:
        Bound of additive noise on each column sum, in ``2**-g_frac_bits`` levels
        (default 0: off).
        ``prog_variation`` and ``read_noise`` belong to the ``uniform`` device: left at
        ``None`` they resolve to 1 and 0 there and to 0 for any other device, and a
        non-zero value with another device is an error (its model has its own errors).
    device, encoding, adc_calibration:
        Cell model (:data:`hw.reram.device.DEVICES`), weight encoding
        (:data:`ENCODINGS`) and ADC full-scale choice (:data:`ADC_CALIBRATIONS`), above.
    adc_offset_mlsb, adc_dnl_mlsb, adc_noise_mlsb:
        ADC non-idealities, in thousandths of an LSB (default 0: off; functional model
        only). Every ADC (one per output and slice, per direction) has a static input
        offset drawn from N(0, offset); its code thresholds ``k - 1/2`` each move by a
        static N(0, dnl) draw, clipped to +-0.45 LSB so codes stay monotonic (a random
        DNL/INL pattern per ADC); and each conversion adds comparator noise N(0, noise).
        For scale (assumptions, not a fit): high-speed 8-bit SAR ADCs of the kind ISAAC
        budgets for are specified near 0.5 LSB DNL/INL; an uncalibrated comparator's
        offset is a few LSB at 8 bits and its noise a fraction of one.
    seed:
        Seed of the on-chip generator (variation, faults, noise).
    rows_per_cycle:
        Crossbar rows the behavioural model sums per clock cycle (a power of two). The
        analog crossbar sums every row at once; the RTL forms a column sum from its
        row-major conductance memory, banked ``rows_per_cycle`` ways, so an input step
        takes ``ceil(rows / rows_per_cycle)`` cycles. A model parameter, not a device
        one: it changes the RTL's cycles and its size, never a result. Default 1 (the
        smallest tile); ``make demo``'s chip uses 8 to co-simulate 16 tiles in time.
    """

    rows: int = 128
    cols: int = 128
    cell_bits: int = 2
    weight_bits: int = 8
    input_bits: int = 8
    dac_bits: int = 1
    adc_bits: int = 9
    adc_range: int | None = None
    write_latency: int = 100
    verify_iters: int = 8
    endurance: int = 100_000_000
    g_frac_bits: int = 4
    prog_variation: int | None = None
    verify_tol: int = 0
    stuck_on_ppm: int = 0
    stuck_off_ppm: int = 0
    read_noise: int | None = None
    seed: int = 1
    rows_per_cycle: int = 1
    device: str = "uniform"
    encoding: str = "offset"
    adc_calibration: str = "worst"
    adc_offset_mlsb: int = 0
    adc_dnl_mlsb: int = 0
    adc_noise_mlsb: int = 0

    def __post_init__(self):
        _check_int("rows", self.rows, 1, 1024)
        _check_int("cols", self.cols, 1, 1024)
        _check_int("cell_bits", self.cell_bits, 1, 4)
        _check_int("weight_bits", self.weight_bits, 2, 16)
        if self.weight_bits % self.cell_bits:
            raise ValueError(f"TileConfig.weight_bits ({self.weight_bits}) cannot be sliced into "
                             f"{self.cell_bits}-bit cells: it must be a multiple of cell_bits")
        _check_int("input_bits", self.input_bits, 2, 16)
        _check_int("dac_bits", self.dac_bits, 1, self.input_bits - 1)
        _check_int("adc_bits", self.adc_bits, 1, 16)
        _check_int("write_latency", self.write_latency, 1, 1 << 16)
        _check_int("verify_iters", self.verify_iters, 1, 64)
        _check_int("endurance", self.endurance, 1, (1 << 32) - 1)
        _check_int("g_frac_bits", self.g_frac_bits, 0, 8)
        model = device_model(self.device)
        for name, default in (("prog_variation", 1), ("read_noise", 0)):
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, default if model.kind == "uniform" else 0)
            elif model.kind != "uniform" and value != 0:
                raise ValueError(f"TileConfig.{name} ({value}) applies to device 'uniform' "
                                 f"only; device {self.device!r} has its own error model "
                                 "(hw.reram.device)")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"TileConfig.encoding must be one of {ENCODINGS}, "
                             f"not {self.encoding!r}")
        if self.adc_calibration not in ADC_CALIBRATIONS:
            raise ValueError(f"TileConfig.adc_calibration must be one of {ADC_CALIBRATIONS}, "
                             f"not {self.adc_calibration!r}")
        _check_int("prog_variation", self.prog_variation, 0, 1 << self.g_frac_bits)
        _check_int("verify_tol", self.verify_tol, 0, 1 << self.g_frac_bits)
        _check_int("stuck_on_ppm", self.stuck_on_ppm, 0, 1_000_000)
        _check_int("stuck_off_ppm", self.stuck_off_ppm, 0, 1_000_000 - self.stuck_on_ppm)
        _check_int("read_noise", self.read_noise, 0, 1 << (self.g_frac_bits + self.cell_bits))
        _check_int("adc_offset_mlsb", self.adc_offset_mlsb, 0, 100_000)
        _check_int("adc_dnl_mlsb", self.adc_dnl_mlsb, 0, 300)
        _check_int("adc_noise_mlsb", self.adc_noise_mlsb, 0, 100_000)
        _check_int("seed", self.seed, 0, (1 << 32) - 1)
        _check_int("rows_per_cycle", self.rows_per_cycle, 1, 1024)
        if self.rows_per_cycle & (self.rows_per_cycle - 1):
            raise ValueError(f"TileConfig.rows_per_cycle ({self.rows_per_cycle}) must be a "
                             "power of two (it selects a memory bank by the row's low bits)")
        if self.adc_range is None:
            object.__setattr__(self, "adc_range", self.max_sum)
        _check_int("adc_range", self.adc_range, 1, self.max_sum)
        step = ((1 << self.dac_bits) - 1) * ((1 << self.cell_bits) - 1)
        if self.differential and self.adc_bits < 2:
            raise ValueError("TileConfig.adc_bits must be at least 2 with differential "
                             "encoding (its ADC is signed)")
        if self.adc_range < step:
            raise ValueError(f"TileConfig.adc_range ({self.adc_range}) cannot represent a single "
                             f"step: one cell at full level and full DAC input gives {step}")
        if self.out_width > 64:
            raise ValueError(f"TileConfig: outputs would need {self.out_width} bits (> 64); "
                             "reduce rows/cols, weight_bits or input_bits")

    # ---- names and serialisation -----------------------------------------------------
    @property
    def name(self) -> str:
        """Verilog module / file / build-directory name; unique per configuration."""
        nonideal = (f"_v{self.prog_variation}t{self.verify_tol}n{self.read_noise}"
                    f"f{self.stuck_on_ppm}x{self.stuck_off_ppm}")
        return (f"reram_r{self.rows}_c{self.cols}_cb{self.cell_bits}_w{self.weight_bits}"
                f"_i{self.input_bits}_d{self.dac_bits}_a{self.adc_bits}r{self.adc_range}"
                f"_g{self.g_frac_bits}{nonideal}_s{self.seed}"
                f"_wl{self.write_latency}x{self.verify_iters}_e{self.endurance}"
                + (f"_p{self.rows_per_cycle}" if self.rows_per_cycle != 1 else "")
                + (f"_dev{self.device.replace('-', '_')}" if self.device != "uniform" else "")
                + ("_diff" if self.differential else "")
                + ("_calw" if self.adc_calibration == "weights" else ""))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "TileConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"TileConfig has no field(s) {sorted(unknown)}")
        return cls(**d)

    def changed(self, **fields) -> "TileConfig":
        """A copy with ``fields`` changed, whose derived defaults follow: a full scale
        left at its default (the largest sum) stays the default of the new shape, and a
        new ``device`` re-resolves ``prog_variation`` and ``read_noise`` unless given."""
        if "adc_range" not in fields and self.adc_range == self.max_sum:
            fields["adc_range"] = None
        if "device" in fields and fields["device"] != self.device:
            fields.setdefault("prog_variation", None)
            fields.setdefault("read_noise", None)
        return dataclasses.replace(self, **fields)

    def with_device(self, name: str) -> "TileConfig":
        """The same tile with device model ``name`` (:meth:`changed`)."""
        return self.changed(device=name)

    def physical(self, k: int) -> "TileConfig":
        """Physical tile ``k`` of a group built from this configuration: its own device
        seed ``seed + k`` (the chip and the functional device place tiles this way)."""
        return dataclasses.replace(self, seed=(self.seed + k) & 0xFFFFFFFF)

    def ideal(self, **overrides) -> "TileConfig":
        """The same tile with no variation, faults or noise and a lossless ADC (the
        ``uniform`` device with zero bounds, which is what the RTL implements)."""
        kw = dict(self.to_dict(), prog_variation=0, verify_tol=0, stuck_on_ppm=0,
                  stuck_off_ppm=0, read_noise=0, adc_range=None, device="uniform",
                  adc_calibration="worst")
        kw["adc_bits"] = max(self.adc_bits, self.lossless_adc_bits)
        kw.update(overrides)
        return TileConfig(**kw)

    # ---- device and encoding ---------------------------------------------------------
    @property
    def device_model(self) -> DeviceModel:
        return device_model(self.device)

    @property
    def differential(self) -> bool:
        return self.encoding == "differential"

    @property
    def adc_nonideal(self) -> bool:
        return bool(self.adc_offset_mlsb or self.adc_dnl_mlsb or self.adc_noise_mlsb)

    def rtl_refusal(self) -> str | None:
        """Why the RTL tile cannot implement this configuration (None: it can). The
        functional model implements every option; the RTL the ``ideal`` and ``uniform``
        devices, both encodings and worst-case ADC ranges."""
        why = []
        if not self.device_model.rtl:
            why.append(f"device {self.device!r} (its per-read Gaussian noise is implemented by "
                       "the functional model only; 'wan2022-prog' is its programming part)")
        if self.adc_calibration != "worst":
            why.append(f"adc_calibration {self.adc_calibration!r} (functional model only)")
        if self.adc_nonideal:
            why.append("ADC offset, DNL or comparator noise (functional model only)")
        if not why:
            return None
        return ("TileConfig: the RTL tile does not implement " + "; ".join(why)
                + "; use the functional backend")

    # ---- derived quantities -----------------------------------------------------------
    @property
    def slices(self) -> int:
        return self.weight_bits // self.cell_bits

    @property
    def cells_per_weight_slice(self) -> int:
        """Physical cells per weight and slice: 2 with differential encoding."""
        return 2 if self.differential else 1

    @property
    def crossbars(self) -> int:
        """Crossbars of one tile: one per slice, twice that with differential encoding."""
        return self.slices * self.cells_per_weight_slice

    @property
    def lanes(self) -> int:
        """Physical cells per (row, column): the crossbars' cells, in the order of
        :func:`sw.golden.reram.weight_levels`."""
        return self.crossbars

    @property
    def input_steps(self) -> int:
        """Analog reads per MVM: magnitude chunks of ``dac_bits``, then the sign bit."""
        return math.ceil((self.input_bits - 1) / self.dac_bits) + 1

    @property
    def row_groups(self) -> int:
        """Cycles to read every crossbar row once (``rows_per_cycle`` rows per cycle)."""
        return -(-self.rows // self.rows_per_cycle)

    @property
    def g_max(self) -> int:
        """Largest conductance code: full level plus the largest programming error."""
        return ((1 << self.cell_bits) - 1 << self.g_frac_bits) + (1 << self.g_frac_bits)

    @property
    def g_min_code(self) -> int:
        """Lowest conductance code: ``-G_min`` in level steps (``G_min`` is removed before
        the ADC, so a level-0 cell that relaxed downwards can read below 0), 0 for the
        ``ideal`` and ``uniform`` devices, which clip at level 0."""
        m = self.device_model
        if m.kind != "gaussian":
            return 0
        return -int(round(m.g_min_us() / m.step_us(self.cell_bits) * (1 << self.g_frac_bits)))

    @property
    def g_signed(self) -> bool:
        """Conductance codes can be negative (a Gaussian device's level-0 cells that relaxed
        below G_min, which the reference column removes)."""
        return self.g_min_code < 0

    @property
    def g_width(self) -> int:
        """Bits of a stored conductance code (two's complement when :attr:`g_signed`)."""
        if self.g_signed:
            return max(self.g_max.bit_length(), (-self.g_min_code).bit_length()) + 1
        return self.g_max.bit_length()

    def gauss_multipliers(self) -> tuple[int, tuple[int, ...]]:
        """A Gaussian device's draw multipliers (:func:`hw.reram.rng.gauss_multiplier`):
        one write-verify pulse's (all levels), and the relaxation's per level; the golden
        model and the RTL use these integers."""
        from .rng import gauss_multiplier
        m = self.device_model
        F, L = self.g_frac_bits, 1 << self.cell_bits
        to_codes = (1 << F) / m.step_us(self.cell_bits)
        relax = tuple(gauss_multiplier(float(m.sigma_us(m.level_us(self.cell_bits, float(lv))))
                                       * to_codes) for lv in range(L))
        return gauss_multiplier(m.pulse_sigma * (1 << F)), relax

    @property
    def max_sum(self) -> int:
        """Largest ideal column sum (level x digit units) in either direction."""
        return max(self.rows, self.cols) * ((1 << self.dac_bits) - 1) * ((1 << self.cell_bits) - 1)

    @property
    def adc_code_bits(self) -> int:
        """Magnitude bits of an ADC code: ``adc_bits``, one less when the ADC is signed."""
        return self.adc_bits - (1 if self.differential else 0)

    @property
    def adc_code_range(self) -> tuple[int, int]:
        """Lowest and highest ADC code."""
        if self.differential:
            return -(1 << (self.adc_bits - 1)), (1 << (self.adc_bits - 1)) - 1
        return 0, (1 << self.adc_bits) - 1

    def shift_for(self, full_scale: int) -> int:
        """log2 of the least power-of-two LSB that keeps ``full_scale`` levels in range."""
        return max(0, int(full_scale).bit_length() - self.adc_code_bits)

    @property
    def adc_shift(self) -> int:
        """log2 of the ADC's LSB, in levels: the least that keeps adc_range in range."""
        return self.shift_for(self.adc_range)

    @property
    def sign_adc_range(self) -> int:
        """Full scale of the sign step's conversions. The sign step drives a one-bit digit
        where the magnitude steps drive up to ``2**dac_bits - 1``, so its column sums are
        that much smaller; the ADC's reference follows the step's DAC amplitude (one
        full-scale setting per step kind), else the sign step, weighted by
        ``-2**(input_bits-1)``, would be quantized with the magnitude steps' coarse LSB."""
        return -(-self.adc_range // ((1 << self.dac_bits) - 1))

    @property
    def sign_adc_shift(self) -> int:
        """log2 of the sign step's ADC LSB (equals :attr:`adc_shift` for 1-bit DACs)."""
        return self.shift_for(self.sign_adc_range)

    def step_adc_shift(self, step: int) -> int:
        """ADC LSB exponent of input step ``step`` (the last step is the sign bit)."""
        return self.sign_adc_shift if step == self.input_steps - 1 else self.adc_shift

    @property
    def lossless_adc_bits(self) -> int:
        return self.max_sum.bit_length() + (1 if self.differential else 0)

    @property
    def out_width(self) -> int:
        """Signed width of an MVM output: covers the exact product and any ADC error."""
        n = max(self.rows, self.cols)
        return self.weight_bits + self.input_bits + n.bit_length() + 2

    @property
    def pulse_width(self) -> int:
        return 32

    # ---- cycle model --------------------------------------------------------------------
    # Each command spends 1 cycle being accepted, then (streams never stalling):
    def program_latency(self, count: int) -> int:
        """PROGRAM of ``count`` rows: per row, take the weights, run ``verify_iters``
        program-and-verify rounds of ``write_latency`` cycles, write back."""
        return 1 + count * (2 + self.verify_iters * self.write_latency) if count else 1

    def mvm_latency(self, count: int) -> int:
        """MVM of ``count`` input vectors: per vector, take it; per input step, accumulate
        the ``rows`` crossbar rows (``rows_per_cycle`` per cycle, plus one cycle to fill
        the read pipeline, which also converts the previous step); convert the last step;
        send the result."""
        return 1 + count * (3 + self.input_steps * (self.row_groups + 1)) if count else 1

    def mvm_t_latency(self, count: int) -> int:
        """MVM_T of ``count`` vectors: per vector, take it, convert ``rows_per_cycle``
        rows per cycle for each input step (plus one cycle to fill the read pipeline), send
        the result.
        The crossbar is stored row-major, so this equals :meth:`mvm_latency`."""
        return self.mvm_latency(count)

    def read_stats_latency(self) -> int:
        return 2

    def reset_stats_latency(self) -> int:
        return 1

    # ---- work counts (for the cost model) ----------------------------------------------
    def mvm_adc_conversions(self, transpose: bool = False) -> int:
        """ADC conversions per MVM: one per input step, slice and output (a differential
        pair's currents are subtracted before one conversion)."""
        return self.input_steps * self.slices * (self.rows if transpose else self.cols)

    def crossbar_reads(self) -> int:
        """Analog crossbar activations per MVM (one per input step and crossbar: twice
        per slice with differential encoding)."""
        return self.input_steps * self.crossbars
