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

from dataclasses import dataclass, field

from amaranth.lib import data

__all__ = ["Stream", "HarnessSpec", "render_harness"]


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


def render_harness(spec: HarnessSpec) -> str:
    fields = {name: (f.offset, f.width) for name, f in spec.command}
    op_lsb, op_w = fields["op"]
    cnt_lsb, cnt_w = fields["count"]
    decl, ports, assigns, on_cmd, on_xfer, idle_terms, resets, holds = [], [], [], [], [], [], [], []
    gos = []
    for n, s in enumerate(spec.streams):
        p = s.port
        nw = s.words
        gos.append(f"    wire go_{p} = rnd[{8 * (n + 1) + 7}:{8 * (n + 1)}] >= stall;")
        decl.append(f"    logic [{nw * 32 - 1}:0] {p}_buf;\n"
                    f"    logic {p}_valid, {p}_ready, {p}_hold;\n"
                    f"    int {p}_ptr;\n"
                    f"    logic [{cnt_w - 1}:0] {p}_left;")
        if s.inbound:
            ports.append(f".{p}__payload({p}_buf[{s.bits - 1}:0]), .{p}__valid({p}_valid), "
                         f".{p}__ready({p}_ready)")
            assigns.append(f"    assign {p}_valid = ({p}_left != 0) & ({p}_hold | go_{p});")
            holds.append(f"            {p}_hold <= {p}_valid & !{p}_ready;")
            on_xfer.append(
                f"            if ({p}_valid & {p}_ready) begin\n"
                f"                {p}_left <= {p}_left - 1; {p}_ptr <= {p}_ptr + {nw};\n"
                f"                for (int i = 0; i < {nw}; i++) {p}_buf[32*i +: 32] <= hpt_rd({p}_ptr + {nw} + i);\n"
                f"            end")
        else:
            decl.append(f"    logic [{s.bits - 1}:0] {p}_payload;")
            ports.append(f".{p}__payload({p}_payload), .{p}__valid({p}_valid), "
                         f".{p}__ready({p}_ready)")
            pad = nw * 32 - s.bits
            assigns.append(f"    assign {p}_buf = " + (f"{{{{{pad}{{1'b0}}}}, {p}_payload}};"
                                                       if pad else f"{p}_payload;"))
            assigns.append(f"    assign {p}_ready = ({p}_left != 0) & go_{p};")
            holds.append(f"            {p}_hold <= 1'b0;")
            on_xfer.append(
                f"            if ({p}_valid & {p}_ready) begin\n"
                f"                {p}_left <= {p}_left - 1; {p}_ptr <= {p}_ptr + {nw};\n"
                f"                for (int i = 0; i < {nw}; i++) hpt_wr({p}_ptr + i, {p}_buf[32*i +: 32]);\n"
                f"            end")
        idle_terms.append(f"({p}_left == 0)")
        resets.append(f"{p}_left <= '0; {p}_hold <= 1'b0;")
    ops = sorted({op for s in spec.streams for op in s.uses})
    for op in ops:
        body = []
        for s in spec.streams:
            if op not in s.uses:
                continue
            ptr, cnt = s.uses[op]
            left = "cur_count" if cnt == "count" else f"{cnt_w}'d{cnt}"
            body.append(f"{s.port}_ptr <= p{ptr}; {s.port}_left <= {left};")
            if s.inbound:
                body.append(f"for (int i = 0; i < {s.words}; i++) "
                            f"{s.port}_buf[32*i +: 32] <= hpt_rd(p{ptr} + i);")
        on_cmd.append(f"                    {op_w}'d{op}: begin\n                        "
                      + "\n                        ".join(body) + "\n                    end")
    nl = "\n"
    return f"""\
// Generated by cosim/harness.py for {spec.core}; do not edit.
// See the module docstring there for the buffer layout and the start/done protocol.
`timescale 1ns/1ps
module {spec.top} (
    input  logic        rst,
    input  logic        start,   // toggle to run the program in the shared buffer
    input  logic [7:0]  stall,   // per-stream stall probability, in 1/256
    input  logic [31:0] seed,    // stall generator seed, taken at start
    output logic        done,    // toggles when the program has finished
    output logic [63:0] cycles,  // cycles of the last program, start to finish
    output logic [63:0] active   // of which the block accepted or executed a command
);
    import "DPI-C" function int hpt_rd(input int addr);
    import "DPI-C" function void hpt_wr(input int addr, input int data);

    localparam int NCMD = {spec.cmd_words}, ENTRY = {spec.entry_words};

    logic clk = 1'b0;
    always #5 clk = ~clk;

    logic [NCMD*32-1:0] cmd_buf;
    logic cmd_valid, cmd_ready, cmd_hold, busy;
{nl.join(decl)}

    {spec.core} core (
        .clk(clk), .rst(rst), .busy(busy),
        .cmd__payload(cmd_buf[{spec.cmd_bits - 1}:0]), .cmd__valid(cmd_valid), .cmd__ready(cmd_ready),
        {(","+nl+"        ").join(ports)});

    // ---- stall generator (xorshift64) ---------------------------------------------------
    logic [63:0] rnd;
    wire go_cmd = rnd[7:0] >= stall;
{nl.join(gos)}

    // ---- sequencer ----------------------------------------------------------------------
    logic running, start_seen, have_cmd;
    int base, n, pc, p0, p1;

    assign cmd_valid = have_cmd & (cmd_hold | go_cmd);
{nl.join(assigns)}

    wire [{op_w - 1}:0] cur_op = cmd_buf[{op_lsb + op_w - 1}:{op_lsb}];
    wire [{cnt_w - 1}:0] cur_count = cmd_buf[{cnt_lsb + cnt_w - 1}:{cnt_lsb}];
    wire finished = running & (pc == n) & !have_cmd & !busy & {" & ".join(idle_terms)};

    function automatic logic [63:0] xorshift64(input logic [63:0] x);
        x = x ^ (x << 13);
        x = x ^ (x >> 7);
        return x ^ (x << 17);
    endfunction

    task automatic fetch(input int index);
        for (int i = 0; i < NCMD; i++) cmd_buf[32*i +: 32] <= hpt_rd(base + index*ENTRY + i);
        p0 <= hpt_rd(base + index*ENTRY + NCMD);
        p1 <= hpt_rd(base + index*ENTRY + NCMD + 1);
    endtask

    always_ff @(posedge clk) begin
        if (rst) begin
            running <= 1'b0; have_cmd <= 1'b0; cmd_hold <= 1'b0;
            {" ".join(resets)}
            start_seen <= start;
        end else if (!running) begin
            if (start != start_seen) begin
                start_seen <= start;
                base = hpt_rd(0);
                n = hpt_rd(1);
                pc <= (n > 0) ? 1 : 0;
                have_cmd <= n > 0;
                if (n > 0) fetch(0);
                cycles <= 0; active <= 0; running <= 1'b1;
                rnd <= {{32'h9E3779B9, (seed == 0) ? 32'h1 : seed}};
            end
        end else begin
            cycles <= cycles + 1;
            if ((cmd_valid & cmd_ready) | busy) active <= active + 1;
            rnd <= xorshift64(rnd);
            cmd_hold <= cmd_valid & !cmd_ready;
{nl.join(holds)}
            if (cmd_valid & cmd_ready) begin
                case (cur_op)
{nl.join(on_cmd)}
                    default: ;
                endcase
                have_cmd <= pc < n;
                if (pc < n) begin fetch(pc); pc <= pc + 1; end
            end
{nl.join(on_xfer)}
            if (finished) running <= 1'b0;
        end
    end

    always_ff @(posedge clk) begin
        if (rst) done <= 1'b0;
        else if (finished) done <= ~done;
    end
endmodule
"""
