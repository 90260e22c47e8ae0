"""What the NannyML comparison benches share: their command line and the run in NannyML's virtualenv.

A bench runs itself a second time as ``SCRIPT --worker NPZ OUT`` under NannyML's
interpreter (``--nannyml-python``), which reads the arrays from ``NPZ`` and
writes its JSON answer to ``OUT``. Only the standard library and numpy are
imported here, so the worker side needs nothing from Driftline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def arguments(description: str) -> argparse.Namespace:
    """``--nannyml-python``, ``--seed`` and the hidden ``--worker NPZ OUT``. Outside the worker:
    exits if the interpreter is missing, and puts the repository first on the path for Driftline."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--nannyml-python", default="/tmp/nanny-venv/bin/python")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", nargs=2, metavar=("NPZ", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.worker:
        if not Path(args.nannyml_python).exists():
            sys.exit(f"NannyML interpreter not found at {args.nannyml_python}: see bench/cbpe_vs_nannyml.py")
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    return args


def run(python: str, script: str, arrays: dict[str, np.ndarray]) -> dict:
    """Run ``script``'s worker under ``python`` on ``arrays``; its JSON answer."""
    with tempfile.TemporaryDirectory() as tmp:
        npz, out = Path(tmp) / "data.npz", Path(tmp) / "out.json"
        np.savez(npz, **arrays)
        subprocess.run(
            [python, script, "--worker", str(npz), str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=600,
        )
        return dict(json.loads(out.read_text()))
