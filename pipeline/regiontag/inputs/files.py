"""Walking an input folder safely and checksumming scans for provenance."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

from regiontag.inputs.nifti_io import CHUNK_BYTES

#: File name endings treated as NIfTI candidates by default.
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def sha256_file(path: str | os.PathLike[str], chunk_bytes: int = CHUNK_BYTES) -> str:
    """SHA-256 of a file's bytes, read in chunks (constant memory).

    Parameters
    ----------
    path : str or path-like
        The file.
    chunk_bytes : int
        Read size.

    Returns
    -------
    str
        Lower-case hexadecimal digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _has_suffix(name: str, suffixes: tuple[str, ...]) -> bool:
    lowered = name.lower()
    return any(lowered.endswith(suffix.lower()) for suffix in suffixes)


def _skip_reason(entry: os.DirEntry[str]) -> str | None:
    """Why a NIfTI-named entry cannot be read, or None when it is a readable regular file."""
    if entry.name.startswith("._"):
        return "macOS resource-fork file (._ prefix), not a scan"
    try:
        status = os.stat(entry.path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symlink loop"
        if error.errno == errno.ENOENT:
            return "broken symlink (target missing)"
        return f"cannot access ({error.strerror or error})"
    if stat.S_ISDIR(status.st_mode):
        return "directory with a NIfTI name"
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file (FIFO, socket or device)"
    if status.st_size == 0:
        return "empty file (0 bytes)"
    try:
        with open(entry.path, "rb") as handle:
            handle.read(1)
    except PermissionError:
        return "permission denied (file is not readable)"
    except OSError as error:
        return f"cannot read ({error.strerror or error})"
    return None


def safe_input_files(
    input_dir: str | os.PathLike[str],
    suffixes: tuple[str, ...] = NIFTI_SUFFIXES,
    max_depth: int = 8,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Find readable NIfTI files under ``input_dir`` without looping or hanging.

    Symlinked folders are followed once (each real folder is visited at most
    once, so symlink loops end the walk of that branch); hidden folders
    (``.git``, ``.DS_Store``...) are not entered; FIFOs and devices are never
    opened.

    Parameters
    ----------
    input_dir : str or path-like
        Folder to walk.
    suffixes : tuple of str
        File name endings of candidates (case-insensitive).
    max_depth : int
        Folder levels below ``input_dir`` to descend.

    Returns
    -------
    candidates : list of Path
        Readable regular files with a NIfTI name, sorted.
    skipped : list of (Path, str)
        NIfTI-named entries (and looping folders) left out, with a one-line reason.

    Raises
    ------
    NotADirectoryError
        ``input_dir`` is not a folder.
    """
    root = Path(os.fsdecode(input_dir))
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    candidates: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    visited: set[tuple[int, int]] = set()

    def walk(folder: Path, depth: int) -> None:
        status = os.stat(folder)
        key = (status.st_dev, status.st_ino)
        if key in visited:
            skipped.append((folder, "symlink loop (folder already visited)"))
            return
        visited.add(key)
        try:
            with os.scandir(folder) as iterator:
                entries = sorted(iterator, key=lambda entry: entry.name)
        except OSError as error:
            skipped.append((folder, f"cannot list folder ({error.strerror or error})"))
            return
        for entry in entries:
            path = Path(entry.path)
            if _has_suffix(entry.name, suffixes):
                reason = _skip_reason(entry)
                if reason is None:
                    candidates.append(path)
                else:
                    skipped.append((path, reason))
                continue
            if entry.name.startswith("."):
                continue
            try:
                is_folder = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_folder = False
            if not is_folder:
                if entry.is_symlink() and not os.path.exists(entry.path):
                    try:
                        os.stat(entry.path)
                    except OSError as error:
                        if error.errno == errno.ELOOP:
                            skipped.append((path, "symlink loop"))
                continue
            if depth >= max_depth:
                skipped.append((path, f"deeper than {max_depth} folder levels"))
                continue
            try:
                walk(path, depth + 1)
            except OSError as error:
                skipped.append((path, f"cannot enter folder ({error.strerror or error})"))

    walk(root, 0)
    return sorted(candidates), sorted(skipped)


def confine_to(base_dir: str | os.PathLike[str], relative: str | os.PathLike[str]) -> Path:
    """``base_dir / relative``, guaranteed to stay inside ``base_dir`` (for output paths).

    Symlinks already present are resolved, so a link inside OUTPUT_DIR that
    points elsewhere cannot be used to write outside it.

    Parameters
    ----------
    base_dir : str or path-like
        The confining folder (e.g. OUTPUT_DIR).
    relative : str or path-like
        A relative path below it (e.g. a session id plus a file name).

    Returns
    -------
    Path
        The joined path (not resolved, so names stay as given).

    Raises
    ------
    ValueError
        Absolute ``relative``, ``..`` components, or a target resolving outside ``base_dir``.
    """
    relative_path = Path(os.fsdecode(relative))
    if relative_path.is_absolute() or relative_path.drive:
        raise ValueError(f"{relative_path}: absolute path where a path inside {base_dir} is expected")
    if ".." in relative_path.parts:
        raise ValueError(f"{relative_path}: path traversal ('..') is not allowed")
    base = Path(os.fsdecode(base_dir))
    joined = base / relative_path
    resolved_base = base.resolve()
    if not joined.resolve().is_relative_to(resolved_base):
        raise ValueError(f"{relative_path}: resolves outside {base} (through a symlink)")
    return joined
