"""Zip files whose bytes depend only on their contents: sorted entries, fixed time and modes."""
from __future__ import annotations

import zipfile
from pathlib import Path

FIXED_TIME = (1980, 1, 1, 0, 0, 0)      # the earliest time a zip entry can hold


class DeterministicZip:
    """Collect ``{name: (bytes, executable)}`` and write them sorted, all stamped alike.

    The same entries always give the same file: entries sorted by name, every timestamp
    ``FIXED_TIME``, mode 0644 (0755 when executable), Unix as the creating system, deflate
    at level 9.
    """

    def __init__(self):
        self.entries: dict[str, tuple[bytes, bool]] = {}

    def add(self, name: str, data: bytes, executable: bool = False) -> None:
        if name in self.entries:
            raise ValueError(f"{name} added twice")
        self.entries[name] = (data, executable)

    def add_file(self, name: str, path: Path) -> None:
        path = Path(path)
        self.add(name, path.read_bytes(), executable=bool(path.stat().st_mode & 0o111))

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with zipfile.ZipFile(tmp, "w") as zf:
            for name in sorted(self.entries):
                data, executable = self.entries[name]
                info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
                info.create_system = 3
                info.external_attr = (0o100755 if executable else 0o100644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data, compresslevel=9)
        tmp.replace(path)
        return path
