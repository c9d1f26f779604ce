"""cocotb entry of a co-simulated training run (started by :mod:`cosim.cotrain`).

The training loop (:class:`sw.train.trainer.Trainer`) runs in cocotb's bridge thread; the
``rtl`` backend's device is a :class:`cosim.rtl_device.CheckedDevice` over the chip, so
every hardware op of the low-parameter phase is a transaction on the Verilated chip that
blocks the loop while the simulator runs. Errors are written to ``RUN_DIR/error.txt``
for the launching process to report.
"""

from __future__ import annotations

import json
import os
import signal
import traceback
from pathlib import Path

import cocotb
from cocotb.task import bridge, resume

from hw.manycore import ManycoreConfig
from sw.device.backends import FunctionalDevice, register_device

from .rtl_device import CheckedDevice, ChipDriver, RtlDevice

CHIP = ManycoreConfig.from_dict(json.loads(os.environ["HPT_CONFIG"]))
JOB = json.loads(os.environ["HPT_TRAIN"])
TRAINERS = []


def _stop(signum, frame):                       # Ctrl-C: checkpoint after the current step
    for t in TRAINERS:
        t.stop()


try:
    signal.signal(signal.SIGINT, _stop)
except ValueError:                              # not the main thread: the STOP file still works
    pass


@cocotb.test()
async def train(dut):
    from sw.train.trainer import Interrupted, RunConfig, Trainer

    run_dir = Path(JOB["run_dir"])
    driver = ChipDriver(dut, CHIP)
    await driver.reset()
    devices = []

    def factory(hw):
        if (hw.systolic, hw.tile, hw.blocks) != (CHIP.systolic, CHIP.tile, CHIP.blocks):
            raise ValueError("the run's hardware config differs from the simulated chip")
        tc = JOB["train"]
        dev = CheckedDevice(RtlDevice(driver, call=lambda fn, *a: resume(fn)(*a)),
                            FunctionalDevice(hw), sample=tc["rtl_sample"], check=tc["check"],
                            seed=tc["seed"])
        devices.append(dev)
        return dev

    register_device("rtl", factory)

    def work():
        import torch
        if JOB.get("torch_threads"):
            torch.set_num_threads(JOB["torch_threads"])
        if JOB["resume"]:
            trainer = Trainer.resume(run_dir, quiet=JOB["quiet"])
        else:
            trainer = Trainer(RunConfig.from_dict(JOB["config"]), run_dir, quiet=JOB["quiet"])
        TRAINERS.append(trainer)
        try:
            metrics = trainer.fit()
        except Interrupted as exc:
            (run_dir / "interrupted.json").write_text(json.dumps({"step": exc.step}) + "\n")
            return None
        counts = [d.counts.to_dict() for d in devices]
        rtl = {"op_checks": counts[-1] if counts else None,
               "rtl_cycles": sum(d.rtl.total.cycles for d in devices),
               "rtl_overlap_cycles": sum(d.rtl.total.overlap for d in devices),
               "rtl_sim_seconds": sum(d.rtl.sim_seconds for d in devices),
               "chip": CHIP.to_dict()}
        (run_dir / "rtl.json").write_text(json.dumps(rtl, indent=1) + "\n")
        return metrics

    try:
        await bridge(work)()
    except BaseException as exc:
        (run_dir / "error.txt").write_text(f"{type(exc).__name__}: {exc}\n\n"
                                           + traceback.format_exc())
        raise
