"""SystolicConfig validation and the cycle model's internal consistency."""

import itertools

import pytest

from hw.systolic import Op, SystolicConfig, pack_command, unpack_command


@pytest.mark.parametrize("field,value", [
    ("rows", 0), ("rows", 129), ("rows", 2.0), ("rows", True), ("cols", -1), ("cols", "4"),
    ("in_width", 1), ("in_width", 33), ("acc_width", 15), ("acc_width", 65),
    ("k_depth", 1), ("k_depth", 65537),
])
def test_bad_field_raises_value_error_naming_it(field, value):
    kw = {"in_width": 8, field: value}
    with pytest.raises(ValueError, match=rf"SystolicConfig\.{field}\b"):
        SystolicConfig(**kw)


def test_defaults_and_derived_widths():
    c = SystolicConfig()
    assert (c.rows, c.cols, c.in_width, c.acc_width, c.k_depth) == (16, 16, 8, 32, 256)
    assert SystolicConfig(in_width=16).acc_width == 48
    assert SystolicConfig(in_width=32).acc_width == 64
    assert (c.in_min, c.in_max) == (-128, 127)
    assert c.addr_width == 8 and c.count_width == 9


def test_config_round_trips_and_names_are_unique():
    cfgs = [SystolicConfig(rows=r, cols=c, in_width=w, k_depth=d)
            for r, c, w, d in itertools.product((1, 3), (1, 5), (8, 16), (2, 300))]
    assert len({c.name for c in cfgs}) == len(cfgs)
    for c in cfgs:
        assert SystolicConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="no field"):
        SystolicConfig.from_dict({"rows": 2, "bogus": 1})


@pytest.mark.parametrize("cfg", [SystolicConfig(rows=1, cols=1, k_depth=2),
                                 SystolicConfig(rows=3, cols=5, k_depth=7),
                                 SystolicConfig(rows=16, cols=16)], ids=lambda c: c.name)
def test_cycle_model_of_plans(cfg):
    for m, k, n in itertools.product((1, 2, 17, 40), (1, 6, 7, 8, 300), (1, 5, 33)):
        plan = cfg.plan(m, k, n)
        if len(plan.row_tiles) * len(plan.col_tiles) * len(plan.k_chunks) > 3000:
            continue                        # (1x1 array, 2-deep scratchpad: keep it quick)
        cycles = cfg.matmul_cycles(m, k, n)
        assert cycles == plan.cycles
        # never worse than the serial core (LOAD, COMPUTE, READ one after another) ...
        tm, tn, tk = len(plan.row_tiles), len(plan.col_tiles), len(plan.k_chunks)
        serial = tm * tn * (2 * k + tk * (cfg.rows + cfg.cols + 1)) + tn * (tm + m)
        assert cycles <= serial
        # ... and never better than the array's MACs at one wavefront per cycle
        assert cycles >= tm * tn * k


def test_overlap_hides_loads_drains_and_reads_in_steady_state():
    # 256^3 on 16x16, chunks of 256: a tile costs 256 issue cycles + 2 (the compute
    # engine's acceptance cycle and the next LOAD's): 256 tiles * 258, plus the first
    # load (256 + 1), the last drain (31) and the last read (16 + 1) minus overlaps
    cfg = SystolicConfig(rows=16, cols=16, k_depth=256)
    cycles = cfg.matmul_cycles(256, 256, 256)
    assert 256 * 256 <= cycles <= 256 * 258 + 257 + 31 + 17
    assert 256 ** 3 / (16 * 16 * cycles) >= 0.90


def test_matmul_cycles_rejects_bad_shapes():
    with pytest.raises(ValueError, match="dimension k"):
        SystolicConfig().matmul_cycles(4, 0, 4)


def test_command_pack_unpack_and_limits():
    cfg = SystolicConfig(rows=4, cols=4, k_depth=10)
    for op in Op:
        bits = pack_command(cfg, op, addr=2, count=2, accumulate=True, last=True, obank=1)
        got = unpack_command(cfg, bits)
        assert got == {"op": op, "addr": 2, "count": 2, "accumulate": 1, "last": 1,
                       "fence": 0, "sbank": 0, "obank": 1}
    with pytest.raises(ValueError, match="sbank must be 0 or 1"):
        pack_command(cfg, Op.LOAD_A, count=1, sbank=2)
    with pytest.raises(ValueError, match="exceeds 10"):
        pack_command(cfg, Op.LOAD_A, addr=5, count=6)
    with pytest.raises(ValueError, match="exceeds 4"):
        pack_command(cfg, Op.READ, addr=1, count=4)


def test_scalesim_reference_count():
    """The benchmark's SCALE-Sim reference: 256^3 on 16x16 is 73,216 cycles (SCALE-Sim 3.0
    reports 73,215, the last cycle's index); a partial fold counts as a whole one."""
    from cosim.bench import UTILISATION_SHAPES, scalesim_os_cycles
    assert scalesim_os_cycles(SystolicConfig(rows=16, cols=16), 256, 256, 256) == 73_216
    assert scalesim_os_cycles(SystolicConfig(rows=8, cols=8), 57, 64, 57) == 8 * 8 * (64 + 14)
    assert len(UTILISATION_SHAPES) == 8
