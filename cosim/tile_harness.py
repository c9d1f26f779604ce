"""The ReRAM tile's co-simulation harness (a :class:`cosim.harness.HarnessSpec`) and driver."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.reram import STATS_LAYOUT, TileConfig, TileOp, pack_tile_command, tile_command_layout
from hw.reram import unpack_stats
from sw.device.packing import pack_vectors, unpack_vectors

from .driver import HarnessDriver, SharedBuffer, Transaction
from .harness import HarnessSpec, Stream

__all__ = ["tile_harness_spec", "TileDriver", "TileResult", "tile_transaction", "tile_outputs"]


def tile_harness_spec(cfg: TileConfig) -> HarnessSpec:
    """``PROGRAM`` streams weight rows from ptr0; ``MVM``/``MVM_T`` stream input vectors
    from ptr0 and write results to ptr1; ``READ_STATS`` writes one record to ptr1."""
    n = max(cfg.rows, cfg.cols)
    vec = (TileOp.MVM.value, TileOp.MVM_T.value)
    return HarnessSpec(
        top=f"{cfg.name}_harness", core=cfg.name, command=tile_command_layout(cfg),
        streams=(
            Stream("w", cfg.cols * cfg.weight_bits, True, {TileOp.PROGRAM.value: (0, "count")}),
            Stream("vin", n * cfg.input_bits, True, {op: (0, "count") for op in vec}),
            Stream("vout", n * cfg.out_width, False, {op: (1, "count") for op in vec}),
            Stream("stats", STATS_LAYOUT.size, False, {TileOp.READ_STATS.value: (1, 1)}),
        ))


def tile_transaction(cfg: TileConfig, op, addr, payload) -> Transaction:
    """One ``(TileOp, addr, data)`` command (as the golden model takes) as a transaction."""
    n = max(cfg.rows, cfg.cols)
    count = 0 if payload is None else len(payload)
    t = Transaction(pack_tile_command(cfg, op, addr=addr, count=count))
    if op == TileOp.PROGRAM:
        t.inputs["w"] = pack_vectors(np.asarray(payload).reshape(count, cfg.cols), cfg.weight_bits)
    elif op in (TileOp.MVM, TileOp.MVM_T):
        v = np.zeros((count, n), np.int64)
        p = np.asarray(payload, np.int64).reshape(count, -1)
        v[:, :p.shape[1]] = p
        t.inputs["vin"] = pack_vectors(v, cfg.input_bits)
        t.outputs["vout"] = count
    elif op == TileOp.READ_STATS:
        t.outputs["stats"] = 1
    return t


def tile_outputs(cfg: TileConfig, ops, outputs: list[dict]) -> list:
    """Per op: None, the output vectors (MVM/MVM_T) or the statistics (READ_STATS)."""
    n = max(cfg.rows, cfg.cols)
    outs = []
    for (op, _, _), o in zip(ops, outputs):
        if "vout" in o:
            width = cfg.rows if op == TileOp.MVM_T else cfg.cols
            outs.append(unpack_vectors(o["vout"], n, cfg.out_width)[:, :width])
        elif "stats" in o:
            bits = sum(int(w) << (32 * i) for i, w in enumerate(o["stats"][0]))
            outs.append(unpack_stats(bits))
        else:
            outs.append(None)
    return outs


@dataclass
class TileResult:
    outputs: list            # per op: None, an (n, width) int64 array, or a stats dict
    cycles: int
    active: int


class TileDriver:
    """Numpy-level driver: ``ops`` are ``(TileOp, addr, data)`` like the golden model's."""

    def __init__(self, dut, cfg: TileConfig, buffer: SharedBuffer | None = None):
        self.cfg = cfg
        self.hw = HarnessDriver(dut, tile_harness_spec(cfg), buffer)

    def _txn(self, op, addr, payload) -> Transaction:
        return tile_transaction(self.cfg, op, addr, payload)

    def start_only(self, ops) -> None:
        self.hw.start_only([self._txn(*o) for o in ops])

    async def run(self, ops, *, stall: int = 0, seed: int = 1) -> TileResult:
        res = await self.hw.run([self._txn(*o) for o in ops], stall=stall, seed=seed)
        return TileResult(tile_outputs(self.cfg, ops, res.outputs), res.cycles, res.active)

    async def reset(self, cycles: int = 2) -> None:
        await self.hw.reset(cycles)
