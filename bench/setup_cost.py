"""Setup time and virtual-environment size of each assignment's Gradescope image.

Builds the assignment's zip, unpacks it into a fresh temporary ``/autograder`` root and runs
its ``setup.sh`` from scratch (nothing seeded: every package is installed as on Gradescope),
then reports the wall time and the size of ``venv/``.

    python bench/setup_cost.py [ASSIGNMENT ...]      # TORCH_INDEX_URL as for setup.sh

On Gradescope torch comes from PyTorch's CPU-only index (setup.sh's default); where that index
cannot be reached, run with ``TORCH_INDEX_URL=pypi`` and a CPU build of torch in pip's own
configuration (as on the development machines) to measure the same image.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def measure(assignment: str) -> tuple[float, float]:
    """(setup wall time in s, venv size in MiB) of a from-scratch setup.sh for ``assignment``."""
    from autograder.instructor.build import autograder_zip
    with tempfile.TemporaryDirectory(prefix="setup-cost-") as tmp:
        root = Path(tmp) / "autograder"
        with zipfile.ZipFile(autograder_zip(assignment, Path(tmp) / "out")) as zf:
            for info in zf.infolist():
                os.chmod(zf.extract(info, root / "source"), (info.external_attr >> 16) & 0o777)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "AUTOGRADER_PROJECT")}
        env["AUTOGRADER_ROOT"] = str(root)
        started = time.monotonic()
        subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return time.monotonic() - started, _size_mib(root / "venv")


def main(argv: list[str]) -> int:
    from autograder.engine import registry
    names = argv or registry.names()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| assignment | setup.sh wall time | venv size |\n|---|---|---|")
    for name in names:
        wall, size = measure(name)
        print(f"| {name} | {wall:.0f} s | {size:.0f} MiB |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
