"""Systolic-array core: configuration, command layout and gateware."""

from .command import Op, command_layout, pack_command, unpack_command
from .config import CoreTiming, MatmulPlan, PlanCommand, SystolicConfig
from .core import SystolicCore

__all__ = ["SystolicConfig", "MatmulPlan", "PlanCommand", "CoreTiming", "Op", "command_layout", "pack_command",
           "unpack_command", "SystolicCore"]
