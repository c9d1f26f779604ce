"""Where experiments run: one execution engine for sweeps, quality grids and comparisons.

A :class:`Task` is a module-level function and its argument (both picklable), the
resources it needs and a key. :func:`execute` runs a list of tasks on an engine and
returns one :class:`Outcome` per task, in order:

* ``ray`` (the default): Ray's tasks. Without ``address`` an embedded local Ray with this
  machine's cores (or ``cpus``); with one, the existing cluster (``"auto"``, or
  ``"ray://host:10001"`` through Ray Client). A task that needs CUDA requests a GPU.
* ``serial``: in this process, one after another (for debugging: breakpoints work). The
  torch thread count a task sets is restored afterwards.

Failures: a task that raises, or whose worker dies (killed, out of memory, a lost node),
is submitted again, at most ``retries`` more times; then its outcome carries the error
and the traceback, and the other tasks complete without it. Ray's own retries are off
(``max_retries=0``) so that both engines follow this one rule.

Progress: one bar over the tasks (counted in ``Task.weight``: a chunk of cost points
counts its points) on stderr, with the rate and the ETA.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Task", "Outcome", "execute", "ENGINES", "Progress"]

ENGINES = ("ray", "serial")


@dataclass(frozen=True)
class Task:
    """``fn(arg)`` under ``key``; ``cpus``/``gpus``: what one run needs (Ray schedules by
    them); ``weight``: how many units of progress it is."""
    key: str
    fn: Callable[[Any], Any]
    arg: Any
    cpus: float = 1.0
    gpus: float = 0.0
    weight: int = 1
    label: str = ""


@dataclass
class Outcome:
    """What became of a task: ``value`` when ``ok``; else ``error`` (one line) and
    ``log`` (the last attempt's traceback). ``attempts``: runs started."""
    key: str
    ok: bool
    value: Any = None
    error: str = ""
    log: str = ""
    attempts: int = 0
    seconds: float = 0.0


class Progress:
    """One progress bar over ``total`` units on a stream, with rate and ETA."""

    def __init__(self, total: int, what: str = "points", stream=None, quiet: bool = False):
        self.total, self.what, self.quiet = max(total, 0), what, quiet
        self.stream = stream or sys.stderr
        self.done = self.failed = 0
        self.t0 = time.perf_counter()
        self._last = 0.0

    def update(self, units: int = 1, failed: int = 0, force: bool = False) -> None:
        self.done += units
        self.failed += failed
        now = time.perf_counter()
        if self.quiet or (not force and now - self._last < 0.2 and self.done < self.total):
            return
        self._last = now
        dt = now - self.t0
        rate = self.done / dt if dt > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        width = 30
        fill = int(width * self.done / self.total) if self.total else width
        eta = "--" if left != left else _hms(left)
        bad = f", {self.failed} failed" if self.failed else ""
        self.stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                          f"{self.what}{bad}  {rate:.3g}/s  ETA {eta}   ")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _call(fn, arg):
    """Run ``fn(arg)``; an exception comes back as a value (with its traceback), so that
    a task's own failure and its worker's death are told apart by the driver."""
    try:
        return True, fn(arg)
    except Exception as exc:                           # noqa: BLE001 (reported, not hidden)
        return False, (f"{type(exc).__name__}: {exc}", traceback.format_exc())


def execute(tasks: list[Task], *, engine: str = "ray", address: str | None = None,
            cpus: int | None = None, retries: int = 2, quiet: bool = False,
            what: str = "points", on_done=None) -> list[Outcome]:
    """Run ``tasks`` (see the module docstring); one :class:`Outcome` per task, in order.
    ``on_done(outcome)`` is called as each task finishes for good (so that a caller can
    record it at once: an interrupted sweep keeps what finished)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, not {retries}")
    if cpus is not None and cpus < 1:
        raise ValueError(f"cpus must be >= 1, not {cpus}")
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    progress = Progress(sum(t.weight for t in tasks), what, quiet=quiet or not tasks)
    if not tasks:
        return []
    run = _serial if engine == "serial" else _ray

    def finished(t: Task, o: Outcome) -> None:
        progress.update(t.weight, failed=0 if o.ok else t.weight)
        if on_done is not None:
            on_done(o)
    return run(tasks, address=address, cpus=cpus, retries=retries, finished=finished)


def _serial(tasks, *, address, cpus, retries, finished) -> list[Outcome]:
    if address is not None:
        raise ValueError("--address needs the ray engine")
    torch = sys.modules.get("torch")
    out = []
    for t in tasks:
        o = Outcome(t.key, False)
        t0 = time.perf_counter()
        while o.attempts <= retries:
            o.attempts += 1
            threads = torch.get_num_threads() if torch is not None else None
            try:
                ok, v = _call(t.fn, t.arg)
            finally:
                torch = sys.modules.get("torch")
                if torch is not None and threads is not None:
                    torch.set_num_threads(threads)
            if ok:
                o.ok, o.value = True, v
                break
            o.error, o.log = v
        o.seconds = time.perf_counter() - t0
        out.append(o)
        finished(t, o)
    return out


def ray_session(address: str | None = None, cpus: int | None = None):
    """A context manager holding a Ray connection: an existing one is kept (and left
    running); else Ray is started (embedded, or joining ``address``) and shut down at
    the end."""
    import contextlib

    @contextlib.contextmanager
    def session():
        import ray
        if ray.is_initialized():
            yield ray
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kw = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        if address is None:
            kw["num_cpus"] = cpus or os.cpu_count() or 1
        elif cpus is not None:
            raise ValueError("--cpus is for an embedded Ray; a cluster has its own")
        ray.init(address=address, **kw)
        try:
            yield ray
        finally:
            ray.shutdown()
    return session()


def _ray(tasks, *, address, cpus, retries, finished) -> list[Outcome]:
    with ray_session(address, cpus) as ray:
        from ray.exceptions import RayError
        remote = ray.remote(_call)
        outcomes = {t.key: Outcome(t.key, False) for t in tasks}
        started = {}

        def submit(t):
            outcomes[t.key].attempts += 1
            started.setdefault(t.key, time.perf_counter())
            return remote.options(num_cpus=t.cpus, num_gpus=t.gpus, max_retries=0,
                                  name=t.label or t.key).remote(t.fn, t.arg)

        pending = {submit(t): t for t in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                t = pending.pop(ref)
                o = outcomes[t.key]
                try:
                    ok, v = ray.get(ref)
                except RayError as exc:                # the worker died, or the node
                    ok, v = False, (f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                                    str(exc))
                if ok:
                    o.ok, o.value = True, v
                else:
                    o.error, o.log = v
                    if o.attempts <= retries:
                        pending[submit(t)] = t
                        continue
                o.seconds = time.perf_counter() - started[t.key]
                finished(t, o)
        return [outcomes[t.key] for t in tasks]
