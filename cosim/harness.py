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

import functools
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
    """SystemVerilog fragments of one command channel (names prefixed ``c<c>_``), from
    the fragments of :data:`CHANNEL_TEMPLATE`."""
    frag = _fragments()
    fields = {name: (f.offset, f.width) for name, f in spec.command}
    op_lsb, op_w = fields["op"]
    cnt_lsb, cnt_w = fields["count"]
    q = f"c{c}_"                                   # harness-side names
    port = (prefix + "__") if prefix else ""      # block-side port prefix
    names = dict(q=q, port=port, cnt_w=cnt_w, cnt_top=cnt_w - 1)

    def fill(name, **values):
        return frag[name].substitute(names, **values)

    def rnd(lane):                                 # the stall generator's byte ``lane``
        return dict(rnd_msb=8 * lane + 7, rnd_lsb=8 * lane)

    f = {k: [] for k in ("decl", "ports", "assigns", "on_xfer", "resets", "holds", "gos")}
    f["decl"].append(fill("channel.decl", cmd_msb=spec.cmd_words * 32 - 1))
    f["ports"].append(fill("channel.ports", cmd_top=spec.cmd_bits - 1))
    f["gos"].append(fill("channel.go", **rnd((4 * c) % 8)))
    f["assigns"].append(fill("channel.assign"))
    f["resets"].append(fill("channel.reset"))
    f["holds"].append(fill("channel.hold"))
    idle = []
    for n, s in enumerate(spec.streams):
        sv = dict(p=q + s.port, bp=port + s.port, nw=s.words, bits_top=s.bits - 1)
        f["gos"].append(fill("stream.go", **sv, **rnd((4 * c + n + 1) % 8)))
        f["decl"].append(fill("stream.decl", **sv, buf_msb=s.words * 32 - 1))
        if s.inbound:
            f["ports"].append(fill("in.ports", **sv))
            f["assigns"].append(fill("in.assign", **sv))
            f["holds"].append(fill("in.hold", **sv))
            f["on_xfer"].append(fill("in.xfer", **sv))
        else:
            pad = s.words * 32 - s.bits
            f["decl"].append(fill("out.decl", **sv))
            f["ports"].append(fill("out.ports", **sv))
            f["assigns"].append(fill("out.assign_padded", **sv, pad=pad) if pad
                                else fill("out.assign", **sv))
            f["assigns"].append(fill("out.ready", **sv))
            f["holds"].append(fill("out.hold", **sv))
            f["on_xfer"].append(fill("out.xfer", **sv))
        idle.append(fill("stream.idle", **sv))
        f["resets"].append(fill("stream.reset", **sv))
    cases = []
    for op in sorted({op for s in spec.streams for op in s.uses}):
        setups = []
        for s in spec.streams:
            if op in s.uses:
                ptr, cnt = s.uses[op]
                sv = dict(p=q + s.port, ptr=ptr, nw=s.words)
                preload = fill("op.preload", **sv) if s.inbound else ""
                setups.append(fill("op.counted", **sv, preload=preload) if cnt == "count"
                              else fill("op.fixed", **sv, left=cnt, preload=preload))
        cases.append(fill("op.case", op_w=op_w, op=op,
                          setups="\n                        ".join(setups)))
    f["decl"].append(fill("channel.control", op_top=op_w - 1, op_msb=op_lsb + op_w - 1,
                          op_lsb=op_lsb, cnt_msb=cnt_lsb + cnt_w - 1, cnt_lsb=cnt_lsb,
                          stream_idle="".join(idle), ncmd=spec.cmd_words,
                          entry=spec.entry_words))
    f["start"] = fill("channel.start", hdr_base=2 * c, hdr_n=2 * c + 1)
    f["issue"] = fill("channel.issue", cases="\n".join(cases))
    return f


#: The per-channel and per-stream fragments (``//%%= NAME`` sections).
CHANNEL_TEMPLATE = Path(__file__).with_name("harness_channel.sv.in")


@functools.lru_cache(maxsize=None)
def _fragments() -> dict:
    """``{name: template}`` of :data:`CHANNEL_TEMPLATE`'s sections."""
    sections, name = {}, None
    for line in CHANNEL_TEMPLATE.read_text().splitlines(keepends=True):
        if line.startswith("//%%= "):
            name = line[len("//%%= "):].strip()
            sections[name] = []
        elif not line.startswith("//%%") and name is not None:
            sections[name].append(line)
    return {k: _SvTemplate("".join(v).removesuffix("\n")) for k, v in sections.items()}


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
