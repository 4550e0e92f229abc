"""Writing a benchmark's results: pretty JSON to ``--out`` (if given) and to stdout; and a
process's own peak RSS."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

__all__ = ["peak_rss_mib", "write_results"]


def write_results(out: dict[str, Any], path: Path | None) -> None:
    text = json.dumps(out, indent=2)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    print(text)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far: Linux's ``VmHWM``, which starts
    afresh at exec. ``ru_maxrss`` (KiB on Linux, the fallback elsewhere) keeps the
    parent's peak across fork and exec, so a child started by a large process reports
    the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
