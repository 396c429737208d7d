"""Where a benchmark writes its figures: outside the checkout unless asked (``--output PATH``).

Results committed under benchmarks/results/ are a deliberate record, refreshed with
``--output benchmarks/results/NAME.json``; an ordinary run must not dirty tracked files.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def add_output_option(parser: argparse.ArgumentParser, name: str) -> None:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "obo-auth" / "benchmarks" / f"{name}.json"
    parser.add_argument("--output", type=Path, default=default, help=f"Where to write the figures (default: {default}).")


def write(path: Path, figures: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {path}")
