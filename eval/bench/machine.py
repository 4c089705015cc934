"""Who else used the CPU: the benchmark shares its 2 cores with whatever else runs on the machine.

In scope: snapshots of CPU time (Linux /proc: the whole machine's busy time from /proc/stat, each
process's own time, and this process's waited-for children), and from two of them the CPU that
anything other than the benchmark and its children (its servers, build and probe processes)
used in between: machine busy time less ours, so short-lived processes of others count too, with
the busiest processes still alive named. Left out: I/O contention, which neither file shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (not idle, iowait)


@dataclass(frozen=True)
class CpuSnapshot:
    processes: dict[int, tuple[float, int]]  # pid -> (CPU seconds, parent pid)
    machine_busy: float  # CPU seconds all cores spent busy since boot
    waited_children: float  # CPU seconds of this process's children that ended and were waited for


def process_cpu() -> CpuSnapshot:
    """CPU seconds used so far by the machine, by every process, and by our ended children."""
    ticks = os.sysconf("SC_CLK_TCK")
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        processes[int(entry.name)] = ((int(fields[11]) + int(fields[12])) / ticks, int(fields[1]))
    machine = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return CpuSnapshot(
        processes,
        sum(int(machine[index]) for index in _BUSY_FIELDS) / ticks,
        (int(own[13]) + int(own[14])) / ticks,
    )


def _ours(snapshot: CpuSnapshot) -> set[int]:
    """This process and its descendants (a server, a build, a probe) in `snapshot`."""
    ours = {os.getpid()}
    for _ in range(8):
        ours |= {pid for pid, (_, parent) in snapshot.processes.items() if parent in ours}
    return ours


def others_cpu(before: CpuSnapshot, after: CpuSnapshot, seconds: float) -> dict[str, Any]:
    """CPU that anything but this process and its descendants used between the snapshots
    (another engineer's jobs on a shared machine): cores on average, and the busiest of those
    processes still alive at the end."""
    ours_before, ours_after = _ours(before), _ours(after)
    ours = sum(
        cpu - before.processes.get(pid, (0.0, 0))[0]
        for pid, (cpu, _) in after.processes.items()
        if pid in ours_after
    )
    # A child that ended in between: its whole CPU time is in `waited_children` now, so the part
    # already counted at `before` comes off.
    ours += after.waited_children - before.waited_children
    ours -= sum(before.processes[pid][0] for pid in ours_before - ours_after if pid in before.processes)
    others = max(0.0, after.machine_busy - before.machine_busy - ours)
    used = {
        pid: cpu - before.processes.get(pid, (0.0, 0))[0]
        for pid, (cpu, _) in after.processes.items()
        if pid not in ours_after
    }
    busiest = sorted(used, key=lambda pid: -used[pid])[:3]
    return {
        "cores": round(others / seconds, 2) if seconds else None,
        "busiest": [
            {"cores": round(used[pid] / seconds, 2) if seconds else None, "command": _command(pid)}
            for pid in busiest
            if used[pid] > 0.05 * seconds
        ],
    }


def _command(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")[:100]
            .strip()
        )
    except OSError:
        return f"pid {pid} (ended)"
