"""The systolic core's co-simulation harness: a :class:`cosim.harness.HarnessSpec`."""

from __future__ import annotations

from hw.systolic import Op, SystolicConfig, command_layout

from .harness import HarnessSpec, Stream

__all__ = ["systolic_harness_spec"]


def systolic_harness_spec(cfg: SystolicConfig) -> HarnessSpec:
    """``LOAD_A``/``LOAD_B`` stream from ptr0, ``LOAD_AB`` takes A from ptr0 and B from
    ptr1, ``READ`` writes result rows to ptr0; each for ``count`` transfers."""
    vec = cfg.in_width
    return HarnessSpec(
        top=f"{cfg.name}_harness", core=cfg.name, command=command_layout(cfg),
        streams=(
            Stream("a", cfg.rows * vec, True, {Op.LOAD_A.value: (0, "count"),
                                               Op.LOAD_AB.value: (0, "count")}),
            Stream("b", cfg.cols * vec, True, {Op.LOAD_B.value: (0, "count"),
                                               Op.LOAD_AB.value: (1, "count")}),
            Stream("result", cfg.cols * cfg.acc_width, False, {Op.READ.value: (0, "count")}),
        ))


