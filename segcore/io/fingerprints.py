"""Content fingerprints of input and model files, so a resumed run can tell they are the same.

`fingerprint` digests a file's bytes whole up to `FULL_DIGEST_BYTES`; a larger file is known by
its size, its modification time, its first `HEAD_BYTES` and `SAMPLES` pieces of `SAMPLE_BYTES`
spread evenly over it (the header, and a sample of its blocks). A folder (an OME-Zarr) is the
fingerprint of its files' names and fingerprints, its metadata files always digested whole.
Replacing a file by another of the same path and size changes its fingerprint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: Files up to this size are digested whole (a few seconds at most).
FULL_DIGEST_BYTES = 256 * 2**20
#: Bytes digested at the start of a larger file (its header and first blocks).
HEAD_BYTES = 2**20
#: Pieces digested across a larger file, and the bytes of each.
SAMPLES = 256
SAMPLE_BYTES = 64 * 2**10
#: Files of a folder digested whole whatever their size: OME-Zarr's metadata.
METADATA_NAMES = (".zarray", ".zattrs", ".zgroup", "zarr.json")


def fingerprint(path: str | Path) -> str:
    """A hex digest that changes when the file (or any file of the folder) ``path`` changes."""
    path = Path(path)
    if path.is_dir():
        return _folder_fingerprint(path)
    return _file_fingerprint(path, os.stat(path))


def _file_fingerprint(path: Path, stat: os.stat_result, whole: bool = False) -> str:
    """One file's digest: whole when small (or ``whole``), else size, mtime and samples."""
    digest = hashlib.blake2b(digest_size=20)
    size = stat.st_size
    with open(path, "rb") as f:
        if whole or size <= FULL_DIGEST_BYTES:
            for piece in iter(lambda: f.read(2**20), b""):
                digest.update(piece)
            return digest.hexdigest()
        digest.update(f"{size}:{stat.st_mtime_ns}".encode())
        digest.update(f.read(HEAD_BYTES))
        for k in range(SAMPLES):
            f.seek((size - SAMPLE_BYTES) * k // (SAMPLES - 1))
            digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()


def _folder_fingerprint(folder: Path) -> str:
    """A folder's digest: each file's relative name and fingerprint, in name order; chunk files
    whole while the folder's total stays under `FULL_DIGEST_BYTES`, else by size and mtime."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stats = [os.stat(p) for p in files]
    small = sum(s.st_size for s in stats) <= FULL_DIGEST_BYTES
    digest = hashlib.blake2b(digest_size=20)
    for path, stat in zip(files, stats, strict=True):
        name = path.relative_to(folder).as_posix()
        if small or path.name in METADATA_NAMES:
            piece = _file_fingerprint(path, stat, whole=True)
        else:
            piece = f"{stat.st_size}:{stat.st_mtime_ns}"
        digest.update(f"{name}\0{piece}\n".encode())
    return digest.hexdigest()
