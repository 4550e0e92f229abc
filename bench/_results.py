"""Writing a benchmark's results: pretty JSON to ``--out`` (if given) and to stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write_results"]


def write_results(out: dict[str, Any], path: Path | None) -> None:
    text = json.dumps(out, indent=2)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    print(text)
