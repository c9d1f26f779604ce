"""ReRAM tile: configuration, command layout, behavioural crossbar and controller."""

from .command import (STATS_LAYOUT, TileOp, pack_tile_command, tile_command_layout,
                      unpack_stats, unpack_tile_command)
from .config import ADC_CALIBRATIONS, ENCODINGS, TileConfig
from .device import DEVICES, DeviceModel

__all__ = ["TileConfig", "ENCODINGS", "ADC_CALIBRATIONS", "DEVICES", "DeviceModel", "TileOp", "tile_command_layout", "STATS_LAYOUT", "pack_tile_command",
           "unpack_tile_command", "unpack_stats", "ReramTile"]


def __getattr__(name):
    if name == "ReramTile":
        from .tile import ReramTile
        return ReramTile
    raise AttributeError(name)
