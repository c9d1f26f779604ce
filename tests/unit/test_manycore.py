"""ManycoreConfig (presets, validation, serialisation) and the one placement rule."""

import pytest

from hw.manycore import LinkConfig, ManycoreConfig, VectorUnitConfig, preset
from hw.placement import PlacementError, place
from hw.reram import TileConfig
from hw.systolic import SystolicConfig


def test_presets_describe_their_machines():
    a = preset("atleus")
    # 16 ReRAM cores x 16 tiles x 96 crossbars of 128x128, 2-bit cells, 1-bit DACs;
    # 8-bit weights take 4 crossbars -> 24 blocks per tile, 6144 in all
    assert (a.reram_cores, a.tiles_per_core, a.crossbars_per_tile) == (16, 16, 96)
    assert (a.tile.rows, a.tile.cols, a.tile.cell_bits, a.tile.dac_bits) == (128, 128, 2, 1)
    assert (a.blocks_per_tile, a.blocks, a.crossbars) == (24, 6144, 24576)
    assert (a.systolic.rows, a.systolic.cols, a.systolic_cores) == (128, 32, 16)
    d = preset("demo")
    assert (d.blocks, d.tile.rows, d.systolic_cores, d.tile.read_noise) == (16, 64, 1, 0)
    # the demo chip holds every frozen matrix of the tiny preset, one copy, no spare block
    from sw.model.hybrid import frozen_shapes
    from sw.model.transformer import ModelConfig
    placed = place(d, frozen_shapes(ModelConfig.preset("tiny"), "hpt", ("q", "v")))
    assert len(placed.matrices) == 12 and placed.blocks_used == d.blocks == 16
    s = preset("small")
    assert (s.blocks, s.tile.rows, s.systolic.rows) == (7, 128, 16)
    with pytest.raises(ValueError, match="unknown manycore preset 'tpu'"):
        preset("tpu")


def test_replace_round_trip_and_errors_name_the_field():
    a = preset("atleus", **{"tile.adc_bits": 8, "systolic_cores": 4, "links.hops": 2,
                            "replication": None})
    assert (a.tile.adc_bits, a.systolic_cores, a.links.hops) == (8, 4, 2)
    assert a.tile.adc_range == a.tile.max_sum             # full scale follows the sum
    assert ManycoreConfig.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError, match="unknown ManycoreConfig field 'tiles'"):
        a.replace(tiles=3)
    with pytest.raises(ValueError, match="unknown ManycoreConfig field tile.'adc'"):
        a.replace(**{"tile.adc": 3})
    with pytest.raises(ValueError, match="ManycoreConfig has no field"):
        ManycoreConfig.from_dict({**a.to_dict(), "x": 1})
    with pytest.raises(ValueError, match="crossbars_per_tile \\(3\\) cannot hold one block"):
        ManycoreConfig(crossbars_per_tile=3)
    with pytest.raises(ValueError, match="ManycoreConfig.replication must be >= 1, not 0"):
        ManycoreConfig(replication=0)
    with pytest.raises(ValueError, match="LinkConfig.hops must be a positive number"):
        LinkConfig(hops=0)
    with pytest.raises(ValueError, match="unknown primitive 'tanh'"):
        VectorUnitConfig(ops=("add", "tanh"))
    with pytest.raises(ValueError, match="ManycoreConfig.clock_hz must be a positive number"):
        ManycoreConfig(clock_hz=float("nan"))
    # a run folder of the one-core chip (stops 8-10) still reads
    legacy = {"systolic": SystolicConfig().to_dict(), "tile": TileConfig().to_dict(),
              "tiles": 5}
    old = ManycoreConfig.from_dict(legacy)
    assert (old.blocks, old.systolic_cores) == (5, 1)
    # the RTL chip's name depends only on what the RTL implements
    assert a.name == a.replace(**{"links.hops": 5, "clock_hz": 2e9}).name
    assert a.name != a.replace(**{"tile.adc_bits": 9}).name


def _hw(blocks, rows=16, cols=16, replication=1, per_tile=1):
    tile = TileConfig(rows=rows, cols=cols)
    return ManycoreConfig(tile=tile, tiles_per_core=blocks // per_tile,
                          crossbars_per_tile=per_tile * tile.slices, replication=replication)


def test_placement_fills_blocks_in_order_then_copies():
    hw = _hw(12, replication=None)
    p = place(hw, {"a": (20, 16), "b": (16, 40)})    # a: 2x1 blocks; b: 1x3
    assert p["a"].grid == (2, 1) and p["b"].grid == (1, 3)
    assert p["a"].first == ((0,), (1,)) and p["b"].first == ((2, 3, 4),)
    # 5 blocks per copy, 12 blocks: 2 copies, copy by copy
    assert p.copies == 2 and p.blocks_used == 10
    assert p["a"].copies[1] == ((5,), (6,)) and p["b"].copies[1] == ((7, 8, 9),)
    # a matrix's first copy does not depend on what is placed after it
    assert place(hw, {"a": (20, 16)})["a"].first == p["a"].first
    # replication caps the copies; the spare capacity caps replication
    assert place(_hw(12, replication=1), {"a": (20, 16)}).copies == 1
    assert place(_hw(12, replication=4), {"a": (20, 16)}).copies == 4
    assert place(_hw(12, replication=100), {"a": (20, 16)}).copies == 6
    # tiles of 3 blocks: the placement counts tiles and crossbars
    q = place(_hw(12, replication=1, per_tile=3), {"a": (20, 16), "b": (16, 40)})
    assert (q.tiles_used, q.crossbars_used) == (2, 5 * 4)
    # a 1x1 matrix takes one block; sizes 1, odd and asymmetric
    assert place(hw, {"one": (1, 1), "odd": (17, 33)})["odd"].grid == (2, 3)


def test_placement_error_names_the_matrix_and_the_shortfall():
    hw = _hw(6, per_tile=2)
    with pytest.raises(PlacementError, match=r"frozen matrix 'c' \(33x16, 3 blocks of 16x16\) "
                                             r"does not fit: blocks 5..7 of 6; all frozen "
                                             r"matrices need 8 blocks, 2 more than the ReRAM "
                                             r"holds: 1 ReRAM tile\(s\) short"):
        place(hw, {"a": (32, 16), "b": (16, 48), "c": (33, 16)})
    with pytest.raises(PlacementError, match="empty shape"):
        place(hw, {"z": (0, 4)})
    # the paper preset's encoder fits atleus twice over; not the small chip
    from sw.model.hybrid import frozen_shapes
    from sw.model.transformer import ModelConfig
    shapes = frozen_shapes(ModelConfig.preset("paper"), "hpt", ("q", "v"))
    assert len(shapes) == 12 * 6
    assert place(preset("atleus"), shapes).copies == 2
    with pytest.raises(PlacementError, match="'layers.0.attn.q' .* 2297 ReRAM tile"):
        place(preset("small"), shapes)


def test_products_are_assigned_to_cores_by_one_rule():
    import numpy as np

    from hw.placement import assign_products, core_loads
    sa = SystolicConfig(rows=4, cols=4, k_depth=8)
    # many equal products: round-robin, whole products
    a = assign_products(sa, 3, [(5, 7, 6)] * 7)
    assert [[p.product for p in c] for c in a] == [[0, 3, 6], [1, 4], [2, 5]]
    assert all(p.shape == (5, 7, 6) for c in a for p in c)
    # unequal products: longest first to the least-loaded core
    shapes = [(4, 4, 4), (40, 8, 40), (4, 4, 4), (8, 8, 8)]
    a = assign_products(sa, 2, shapes)
    assert [[p.product for p in c] for c in a] == [[1], [3, 0, 2]]
    assert core_loads(a) == [sa.matmul_cycles(40, 8, 40),
                             sa.matmul_cycles(8, 8, 8) + 2 * sa.matmul_cycles(4, 4, 4)]
    # fewer products than cores: output row tiles, then column tiles, cover every output
    # element exactly once, on the product's own cores
    for cores, shapes in ((4, [(17, 3, 9)]), (8, [(9, 2, 30), (1, 5, 1)]), (5, [(3, 3, 3)] * 2),
                          (16, [(16, 16, 16)])):
        a = assign_products(sa, cores, shapes)
        per = cores // len(shapes)
        covered = [np.zeros((m, n), int) for m, _, n in shapes]
        for c, pieces in enumerate(a):
            assert len(pieces) <= 1
            for p in pieces:
                assert c // per == p.product and p.k == shapes[p.product][1]
                assert p.cycles == sa.matmul_cycles(*p.shape)
                covered[p.product][p.rows[0]:p.rows[1], p.cols[0]:p.cols[1]] += 1
        assert all((cov == 1).all() for cov in covered)
    # 16x16 on 16 cores of 4x4: one output tile each
    assert core_loads(assign_products(sa, 16, [(16, 16, 16)])) == [sa.matmul_cycles(4, 16, 4)] * 16
    assert assign_products(sa, 2, []) == ((), ())
    with pytest.raises(ValueError, match="systolic cores must be a positive integer"):
        assign_products(sa, 0, [(1, 1, 1)])
    with pytest.raises(ValueError, match=r"product 1: shape must be three positive integers"):
        assign_products(sa, 2, [(1, 1, 1), (1, 0, 1)])


def test_unit_signatures_are_declared_without_building_the_units():
    """The chip declares its ports from the units' signature classes: equal to the built
    components' signatures, and different for another configuration."""
    import warnings

    from hw.chip import Chip
    from hw.reram.tile import ReramTile, TileSignature
    from hw.systolic.core import CoreSignature, SystolicCore
    sa, tile = SystolicConfig(rows=2, cols=3, k_depth=4), TileConfig(rows=4, cols=3).ideal()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # components built only to compare
        assert SystolicCore(sa).signature == CoreSignature(sa)
        assert ReramTile(tile).signature == TileSignature(tile)
        assert ReramTile(tile, seed_port=True).signature == TileSignature(tile, seed_port=True)
        assert TileSignature(tile) != TileSignature(tile, seed_port=True)
        assert CoreSignature(sa) != CoreSignature(SystolicConfig(rows=3, cols=3, k_depth=4))
        chip = Chip(ManycoreConfig.single(sa, tile, 2))
    assert chip.signature.members["sa0"].signature == CoreSignature(sa)
    assert chip.signature.members["t1"].signature == TileSignature(tile)
    assert set(CoreSignature(sa).members) == {"cmd", "a", "b", "result", "busy"}
    with pytest.raises(TypeError, match="SystolicConfig"):
        CoreSignature(tile)


def test_chip_config_errors_name_the_field():
    from hw.chip import check_chip
    s, t = SystolicConfig(rows=2, cols=2), TileConfig(rows=4, cols=4)
    with pytest.raises(ValueError, match="ManycoreConfig.tiles_per_core"):
        ManycoreConfig.single(s, t, 0)
    with pytest.raises(ValueError, match=r"the RTL chip holds 1..31 ReRAM blocks .*has 32"):
        check_chip(ManycoreConfig.single(s, t, 32))
    with pytest.raises(TypeError, match="ManycoreConfig.tile "):
        ManycoreConfig.single(s, s, 1)
    with pytest.raises(ValueError, match=r"the RTL chip holds 1..16 systolic cores.* is 17"):
        check_chip(ManycoreConfig.single(s, t, 2, systolic_cores=17))
