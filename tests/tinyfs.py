"""A real, tiny file system for full-disk tests (not a test module).

`tiny_fs` mounts a 2 MB tmpfs in the test's tmp folder (root only; the test is skipped with the
reason when mounting is not permitted), and `TinyFS.fill()` writes a filler file until the
kernel answers ENOSPC, so SQLite gets a genuine "database or disk is full".
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class TinyFS:
    root: Path

    @property
    def filler(self) -> Path:
        return self.root / "filler"

    def fill(self) -> None:
        """Take every free byte (the file grows until the file system refuses)."""
        with open(self.filler, "ab", buffering=0) as out:
            for size in (1 << 16, 1 << 12, 1 << 9, 1):
                try:
                    while True:
                        out.write(b"\0" * size)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
        assert os.statvfs(self.root).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[TinyFS]:
    root = tmp_path / "tiny"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(root)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield TinyFS(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
