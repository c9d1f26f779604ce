"""Generated SystemVerilog co-simulation harness: a small DMA engine around one block.

Every block with a command stream and data streams (``amaranth.lib.stream`` ports) is
simulated the same way. Python writes a whole *program* — packed commands plus the
words their input streams carry — into the shared buffer of ``shim.cpp`` with one numpy
copy, toggles ``start`` and awaits a toggle of ``done``. In between no Python runs: the
clock is generated inside the simulation (``always #5``), and the harness feeds the
block's streams from the buffer and writes its output streams back through DPI calls.

Buffer layout (32-bit words)::

    [0] program base address     [1] number of entries
    entry e at base + e*ENTRY:   command words (NCMD), ptr0, ptr1

A :class:`HarnessSpec` says, for every operation, which streams it uses, which entry
pointer each stream starts at, and how many transfers it makes (the command's ``count``
field or exactly one).

``stall`` (0..255) makes every stream stall with probability ``stall/256`` per cycle,
from an xorshift generator seeded by ``seed``, obeying the stream rules (valid never
drops before a transfer). With ``stall = 0`` the harness adds no bubble: ``active`` (the
cycles the block accepted or executed a command) then equals its cycle model and
``cycles == active + 1``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.lib import data

__all__ = ["Stream", "HarnessSpec", "MultiSpec", "render_harness"]


@dataclass(frozen=True)
class Stream:
    """One data stream of the block: ``port`` is the Amaranth port name, ``bits`` its
    payload width; ``uses`` maps an op value to ``(pointer index, "count" or 1)``."""
    port: str
    bits: int
    inbound: bool
    uses: dict = field(default_factory=dict)

    @property
    def words(self) -> int:
        return (self.bits + 31) // 32


@dataclass(frozen=True)
class HarnessSpec:
    top: str                      # harness module name
    core: str                     # block module name
    command: data.StructLayout    # must have "op" and "count" fields
    streams: tuple[Stream, ...]

    @property
    def cmd_bits(self) -> int:
        return self.command.size

    @property
    def cmd_words(self) -> int:
        return (self.command.size + 31) // 32

    @property
    def entry_words(self) -> int:
        return self.cmd_words + 2

    def stream(self, port: str) -> Stream:
        return next(s for s in self.streams if s.port == port)


@dataclass(frozen=True)
class MultiSpec:
    """Several blocks inside one module (a chip), each with its own command channel:
    ``channels`` are ``(prefix, HarnessSpec)``; the block ``spec.core`` of a channel is
    reached through ports ``<prefix>__cmd``, ``<prefix>__<stream>``, ``<prefix>__busy``.
    The first ``first`` channels form one group (a chip's systolic cores) for the
    ``overlap`` counter: cycles in which a channel of that group and one of the others
    were active at once."""
    top: str
    core: str
    channels: tuple
    first: int = 1

    def __post_init__(self):
        if not 1 <= self.first < len(self.channels):
            raise ValueError(f"MultiSpec.first must leave channels on both sides: "
                             f"{self.first} of {len(self.channels)}")


def render_harness(spec) -> str:
    """The harness of a :class:`HarnessSpec` (one block) or a :class:`MultiSpec` (a chip).

    Buffer header: channel ``c`` finds its program base at word ``2c`` and its number of
    entries at ``2c + 1``. ``start`` runs every channel's program at once (the blocks work
    concurrently); ``done`` toggles when all have finished. ``active`` counts the cycles
    in which any block accepted or executed a command; a chip also reports that per
    channel (``active_<prefix>``) and ``overlap``: cycles in which a channel of the first
    group (:attr:`MultiSpec.first`) and a channel of the rest were active at once.
    """
    if isinstance(spec, HarnessSpec):
        return _render(spec.top, spec.core, [("", spec)], 1)
    return _render(spec.top, spec.core, list(spec.channels), spec.first)


def _channel(c: int, prefix: str, spec: HarnessSpec) -> dict:
    """SystemVerilog fragments of one command channel (names prefixed ``c<c>_``)."""
    fields = {name: (f.offset, f.width) for name, f in spec.command}
    op_lsb, op_w = fields["op"]
    cnt_lsb, cnt_w = fields["count"]
    q = f"c{c}_"                                   # harness-side names
    port = (prefix + "__") if prefix else ""      # block-side port prefix
    f = {k: [] for k in ("decl", "ports", "assigns", "on_xfer", "idle", "resets", "holds", "gos")}
    f["decl"].append(f"    logic [{spec.cmd_words * 32 - 1}:0] {q}cmd_buf;\n"
                     f"    logic {q}cmd_valid, {q}cmd_ready, {q}cmd_hold, {q}busy, {q}have_cmd;\n"
                     f"    int {q}base, {q}n, {q}pc, {q}p0, {q}p1;")
    f["ports"].append(f".{port}cmd__payload({q}cmd_buf[{spec.cmd_bits - 1}:0]), "
                      f".{port}cmd__valid({q}cmd_valid), .{port}cmd__ready({q}cmd_ready), "
                      f".{port}busy({q}busy)")
    lane = (4 * c) % 8
    f["gos"].append(f"    wire {q}go_cmd = rnd[{8 * lane + 7}:{8 * lane}] >= stall;")
    f["assigns"].append(f"    assign {q}cmd_valid = {q}have_cmd & ({q}cmd_hold | {q}go_cmd);")
    f["resets"].append(f"{q}have_cmd <= 1'b0; {q}cmd_hold <= 1'b0;")
    f["holds"].append(f"            {q}cmd_hold <= {q}cmd_valid & !{q}cmd_ready;")
    for n, s in enumerate(spec.streams):
        p, nw = q + s.port, s.words
        lane = (4 * c + n + 1) % 8
        f["gos"].append(f"    wire go_{p} = rnd[{8 * lane + 7}:{8 * lane}] >= stall;")
        f["decl"].append(f"    logic [{nw * 32 - 1}:0] {p}_buf;\n"
                         f"    logic {p}_valid, {p}_ready, {p}_hold;\n"
                         f"    int {p}_ptr;\n"
                         f"    logic [{cnt_w - 1}:0] {p}_left;")
        bp = port + s.port
        if s.inbound:
            f["ports"].append(f".{bp}__payload({p}_buf[{s.bits - 1}:0]), .{bp}__valid({p}_valid), "
                              f".{bp}__ready({p}_ready)")
            f["assigns"].append(f"    assign {p}_valid = ({p}_left != 0) & ({p}_hold | go_{p});")
            f["holds"].append(f"            {p}_hold <= {p}_valid & !{p}_ready;")
            f["on_xfer"].append(
                f"            if ({p}_valid & {p}_ready) begin\n"
                f"                {p}_left <= {p}_left - 1; {p}_ptr <= {p}_ptr + {nw};\n"
                f"                for (int i = 0; i < {nw}; i++) {p}_buf[32*i +: 32] <= hpt_rd({p}_ptr + {nw} + i);\n"
                f"            end")
        else:
            f["decl"].append(f"    logic [{s.bits - 1}:0] {p}_payload;")
            f["ports"].append(f".{bp}__payload({p}_payload), .{bp}__valid({p}_valid), "
                              f".{bp}__ready({p}_ready)")
            pad = nw * 32 - s.bits
            f["assigns"].append(f"    assign {p}_buf = " + (f"{{{{{pad}{{1'b0}}}}, {p}_payload}};"
                                                            if pad else f"{p}_payload;"))
            f["assigns"].append(f"    assign {p}_ready = ({p}_left != 0) & go_{p};")
            f["holds"].append(f"            {p}_hold <= 1'b0;")
            f["on_xfer"].append(
                f"            if ({p}_valid & {p}_ready) begin\n"
                f"                {p}_left <= {p}_left - 1; {p}_ptr <= {p}_ptr + {nw};\n"
                f"                for (int i = 0; i < {nw}; i++) hpt_wr({p}_ptr + i, {p}_buf[32*i +: 32]);\n"
                f"            end")
        f["idle"].append(f"({p}_left == 0)")
        f["resets"].append(f"{p}_left <= '0; {p}_hold <= 1'b0;")
    on_cmd = []
    for op in sorted({op for s in spec.streams for op in s.uses}):
        body = []
        for s in spec.streams:
            if op not in s.uses:
                continue
            ptr, cnt = s.uses[op]
            left = f"{q}cur_count" if cnt == "count" else f"{cnt_w}'d{cnt}"
            # a command that transfers nothing leaves the stream alone: a block may accept
            # it while an earlier command's transfers on that stream are still running
            guard = f"if ({q}cur_count != 0) " if cnt == "count" else ""
            setup = f"{q}{s.port}_ptr <= {q}p{ptr}; {q}{s.port}_left <= {left};"
            if s.inbound:
                setup += (f" for (int i = 0; i < {s.words}; i++) "
                          f"{q}{s.port}_buf[32*i +: 32] <= hpt_rd({q}p{ptr} + i);")
            body.append(f"{guard}begin {setup} end")
        on_cmd.append(f"                    {op_w}'d{op}: begin\n                        "
                      + "\n                        ".join(body) + "\n                    end")
    ncmd, entry = spec.cmd_words, spec.entry_words
    f["decl"].append(
        f"    wire [{op_w - 1}:0] {q}cur_op = {q}cmd_buf[{op_lsb + op_w - 1}:{op_lsb}];\n"
        f"    wire [{cnt_w - 1}:0] {q}cur_count = {q}cmd_buf[{cnt_lsb + cnt_w - 1}:{cnt_lsb}];\n"
        f"    wire {q}idle = ({q}pc == {q}n) & !{q}have_cmd & !{q}busy"
        + "".join(f" & {t}" for t in f["idle"]) + ";\n"
        f"    wire {q}active = ({q}cmd_valid & {q}cmd_ready) | {q}busy;\n"
        f"    task automatic {q}fetch(input int index);\n"
        f"        for (int i = 0; i < {ncmd}; i++) {q}cmd_buf[32*i +: 32] <= hpt_rd({q}base + index*{entry} + i);\n"
        f"        {q}p0 <= hpt_rd({q}base + index*{entry} + {ncmd});\n"
        f"        {q}p1 <= hpt_rd({q}base + index*{entry} + {ncmd} + 1);\n"
        f"    endtask")
    f["start"] = (f"                {q}base = hpt_rd({2 * c});\n"
                  f"                {q}n = hpt_rd({2 * c + 1});\n"
                  f"                {q}pc <= ({q}n > 0) ? 1 : 0;\n"
                  f"                {q}have_cmd <= {q}n > 0;\n"
                  f"                if ({q}n > 0) {q}fetch(0);")
    f["issue"] = (f"            if ({q}cmd_valid & {q}cmd_ready) begin\n"
                  f"                case ({q}cur_op)\n" + "\n".join(on_cmd) + "\n"
                  f"                    default: ;\n"
                  f"                endcase\n"
                  f"                {q}have_cmd <= {q}pc < {q}n;\n"
                  f"                if ({q}pc < {q}n) begin {q}fetch({q}pc); {q}pc <= {q}pc + 1; end\n"
                  f"            end")
    return f


class _SvTemplate(string.Template):
    """``%%{name}`` placeholders: SystemVerilog itself uses ``$`` (system tasks) and ``@``
    (events), never ``%%``."""
    delimiter = "%%"


#: The harness module; the per-channel fragments of :func:`_channel` fill its placeholders.
TEMPLATE = Path(__file__).with_name("harness.sv.in")


def _render(top: str, core: str, channels: list, first: int) -> str:
    parts = [_channel(c, prefix, spec) for c, (prefix, spec) in enumerate(channels)]
    cat = lambda k, sep="\n": sep.join(x for p in parts for x in p[k])   # noqa: E731
    nl = "\n"
    multi = len(channels) > 1
    pub = "/*verilator public_flat_rw*/"
    extra_ports = "".join(f",\n    output logic [63:0] active_{prefix} {pub}"
                          for prefix, _ in channels) \
        + f",\n    output logic [63:0] overlap {pub}" if multi else ""
    group = " | ".join(f"c{c}_active" for c in range(first))
    others = " | ".join(f"c{c}_active" for c in range(first, len(channels))) or "1'b0"
    per_channel = "".join(
        f"            if (c{c}_active) active_{prefix} <= active_{prefix} + 1;\n"
        for c, (prefix, _) in enumerate(channels)) + \
        f"            if (({group}) & ({others})) overlap <= overlap + 1;\n" if multi else ""
    clear = "".join(f" active_{prefix} <= 0;" for prefix, _ in channels) + " overlap <= 0;" \
        if multi else ""
    text = "".join(line for line in TEMPLATE.read_text().splitlines(keepends=True)
                   if not line.startswith("//%%"))             # the template's own notes
    return _SvTemplate(text).substitute(
        top=top, core=core, extra_ports=extra_ports, decl=cat("decl"),
        ports=("," + nl + "        ").join(x for p in parts for x in p["ports"]),
        gos=cat("gos"), assigns=cat("assigns"),
        all_idle=" & ".join(f"c{c}_idle" for c in range(len(channels))),
        resets=cat("resets", " "), start=nl.join(p["start"] for p in parts), clear=clear,
        any_active=" | ".join(f"c{c}_active" for c in range(len(channels))),
        per_channel=per_channel, holds=cat("holds"), issue=nl.join(p["issue"] for p in parts),
        on_xfer=cat("on_xfer"))
