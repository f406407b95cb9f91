"""Low-level, bounded reading of single-file NIfTI-1/NIfTI-2 volumes.

Used by :mod:`regiontag.inputs.scan`.  Everything here works on raw bytes and
the header structure so that a hostile file is rejected *before* nibabel or
numpy allocate memory for it: the file type is checked with ``stat`` (no
FIFOs, devices, directories or symlink loops), the header is parsed and its
dimensions, datatype and voxel limit are checked, and only then is the data
read, never more than the header says plus one slice, straight into the float32
result chunk by chunk (no copy of the raw bytes: a gzip bomb of 149 M float64
zeros peaks at its 0.6 GB of float32, not at 2.4 GB).
"""

from __future__ import annotations

import errno
import gzip
import io
import math
import os
import stat
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np

#: First two bytes of every gzip stream.
GZIP_MAGIC = b"\x1f\x8b"
#: Read size when streaming files.
CHUNK_BYTES = 1 << 20
#: Largest accepted vox_offset: header extensions (e.g. embedded DICOM fields) rarely exceed a few MB.
MAX_VOX_OFFSET = 64 << 20

#: NIfTI datatype codes whose data regiontag can use (scalar, real-valued).
SUPPORTED_DATATYPES = {2, 4, 8, 16, 64, 256, 512, 768, 1024, 1280}
#: Names of the known but unsupported NIfTI datatype codes.
UNSUPPORTED_DATATYPES = {
    0: "unknown (code 0)",
    1: "binary (1 bit)",
    32: "complex64",
    128: "RGB24",
    1536: "float128",
    1792: "complex128",
    2048: "complex256",
    2304: "RGBA32",
}


class InputError(ValueError):
    """A scan cannot be used; the message is one line starting with the file name."""


def display_name(path: str | os.PathLike[str]) -> str:
    """File name safe for a one-line message (control characters escaped).

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    str
        The base name with newlines, tabs and other control characters shown
        as ``\\n``-style escapes, so a hostile name cannot break a log line.
    """
    name = Path(os.fsdecode(path)).name or os.fsdecode(path)
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in name)


def input_error(path: str | os.PathLike[str], reason: str) -> InputError:
    """Build an ``InputError`` whose message is ``"<file name>: <reason>"`` on one line."""
    one_line = " ".join(str(reason).split())
    return InputError(f"{display_name(path)}: {one_line}")


def check_regular_file(path: Path) -> os.stat_result:
    """Stat ``path`` and reject anything that is not a readable-looking regular file.

    Parameters
    ----------
    path : Path
        The candidate file.

    Returns
    -------
    os.stat_result
        ``stat`` of the target (symlinks followed).

    Raises
    ------
    InputError
        Missing file, broken symlink, symlink loop, directory, FIFO/device or empty file.
    """
    try:
        os.lstat(path)
    except FileNotFoundError:
        raise input_error(path, "file not found") from None
    except OSError as error:
        raise input_error(path, f"cannot access file ({error.strerror or error})") from None
    try:
        status = os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise input_error(path, "symlink loop (too many levels of symbolic links)") from None
        if error.errno == errno.ENOENT:
            raise input_error(path, "broken symlink (its target does not exist)") from None
        if error.errno == errno.EACCES:
            raise input_error(path, "permission denied") from None
        raise input_error(path, f"cannot access file ({error.strerror or error})") from None
    if stat.S_ISDIR(status.st_mode):
        raise input_error(path, "is a directory with a NIfTI name, not a NIfTI file")
    if not stat.S_ISREG(status.st_mode):
        raise input_error(path, "not a regular file (FIFO, socket or device)")
    if status.st_size == 0:
        raise input_error(path, "empty file (0 bytes)")
    return status


def open_raw(path: Path):
    """Open ``path`` for binary reading without ever blocking, mapping OS errors to ``InputError``.

    ``O_NONBLOCK`` plus an ``fstat`` after opening means a file swapped for a
    FIFO between the ``stat`` check and the open cannot hang the reader.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except PermissionError:
        raise input_error(path, "permission denied (file is not readable)") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise input_error(path, "symlink loop (too many levels of symbolic links)") from None
        raise input_error(path, f"cannot open file ({error.strerror or error})") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise input_error(path, "not a regular file (FIFO, socket or device)")
    return os.fdopen(descriptor, "rb")


class _BoundedStream:
    """Read from a plain or gzip file, translating decompression errors to ``InputError``."""

    def __init__(self, path: Path, raw, compressed: bool):
        self.path = path
        self.compressed = compressed
        self._stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw

    @contextmanager
    def _read_errors(self) -> Iterator[None]:
        """Turn a read error of the (gzip) stream into the file's one-line ``InputError``."""
        try:
            yield
        except EOFError:
            raise input_error(self.path, "truncated gzip (compressed stream ends before its end marker)") from None
        except (zlib.error, gzip.BadGzipFile) as error:
            raise input_error(self.path, f"corrupt gzip ({error})") from None
        except OSError as error:
            raise input_error(self.path, f"read error ({error.strerror or error})") from None

    def read(self, size: int) -> bytes:
        """Read up to ``size`` bytes (fewer only at the end of the stream)."""
        parts: list[bytes] = []
        remaining = size
        while remaining > 0:
            with self._read_errors():
                chunk = self._stream.read(min(remaining, CHUNK_BYTES))
            if not chunk:
                break
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` from the stream (fewer bytes only at its end); returns the bytes written."""
        filled = 0
        while filled < len(buffer):
            with self._read_errors():
                count = self._stream.readinto(buffer[filled:])
            if not count:
                break
            filled += count
        return filled


@dataclass
class RawNifti:
    """A NIfTI file read with its checks done: the header, and the data as flat float32 (scaling applied).

    ``data`` holds the voxels in file (Fortran) order; ``data.reshape(shape, order="F")`` is the volume.
    """

    header: nib.Nifti1Header
    shape: tuple[int, ...]
    data: np.ndarray
    compressed: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def is_nifti2(self) -> bool:
        """True for a NIfTI-2 header."""
        return isinstance(self.header, nib.Nifti2Header)


def _header_class(path: Path, first4: bytes) -> tuple[type[nib.Nifti1Header], str]:
    if len(first4) < 4:
        raise input_error(path, f"not a NIfTI file (only {len(first4)} bytes)")
    for endian, code in (("<", "<i4"), (">", ">i4")):
        size = int(np.frombuffer(first4, dtype=code)[0])
        if size == 348:
            return nib.Nifti1Header, endian
        if size == 540:
            return nib.Nifti2Header, endian
    preview = first4.decode("latin1")
    printable = "".join(char if char.isprintable() else "." for char in preview)
    raise input_error(
        path,
        f"not a NIfTI file (sizeof_hdr is neither 348 nor 540; file starts with {printable!r})",
    )


def _check_magic(path: Path, header: nib.Nifti1Header) -> None:
    magic = header["magic"].item()
    if magic == header.single_magic:
        return
    if magic == header.pair_magic:
        raise input_error(
            path, f"wrong magic {magic.decode('latin1')!r}: header of a .hdr/.img pair, not a single .nii"
        )
    shown = magic.decode("latin1", errors="replace")
    shown = "".join(char if char.isprintable() else "." for char in shown)
    raise input_error(path, f"wrong magic {shown!r} (expected {header.single_magic.decode()!r})")


def check_dims(path: Path, header: nib.Nifti1Header, max_voxels: int, min_slices: int) -> tuple[int, ...]:
    """Validate ``dim`` from the header alone; return the data shape as stored.

    Raises
    ------
    InputError
        Invalid ``dim[0]``, non-positive sizes, more voxels than ``max_voxels``,
        2D images, slabs thinner than ``min_slices`` and multi-volume 4D+ images.
    """
    dim = [int(value) for value in header["dim"]]
    ndim = dim[0]
    if not 1 <= ndim <= 7:
        raise input_error(path, f"invalid header: dim[0]={ndim} (must be 1..7)")
    shape = tuple(dim[1 : ndim + 1])
    if any(size <= 0 for size in shape):
        raise input_error(path, f"invalid header dimensions {shape} (sizes must be positive)")
    n_voxels = math.prod(shape)
    if n_voxels > max_voxels:
        raise input_error(
            path,
            f"{n_voxels} voxels ({'x'.join(map(str, shape))}) exceeds the limit of {max_voxels} "
            "(limits.max_voxels)",
        )
    spatial = (shape + (1, 1, 1))[:3]
    if ndim < 3 or min(spatial) == 1:
        raise input_error(path, f"2D image (shape {'x'.join(map(str, shape))}); a 3D volume is expected")
    n_volumes = math.prod(shape[3:])
    if n_volumes > 1:
        raise input_error(
            path, f"{ndim}D image with {n_volumes} volumes; a single 3D volume is expected"
        )
    if min(spatial) < min_slices:
        raise input_error(
            path,
            f"slab only {min(spatial)} voxels thick (shape {'x'.join(map(str, spatial))}); "
            f"at least {min_slices} slices needed (limits.min_slices)",
        )
    return shape


def check_datatype(path: Path, header: nib.Nifti1Header) -> np.dtype:
    """Return the on-disk dtype, rejecting complex, RGB and unknown datatypes."""
    code = int(header["datatype"])
    if code in UNSUPPORTED_DATATYPES:
        raise input_error(
            path, f"unsupported datatype {UNSUPPORTED_DATATYPES[code]}; a real-valued scalar image is expected"
        )
    if code not in SUPPORTED_DATATYPES:
        raise input_error(path, f"unknown datatype code {code}")
    return header.get_data_dtype()


def _data_offset(path: Path, header: nib.Nifti1Header, warnings: list[str]) -> int:
    minimum = int(header["sizeof_hdr"]) + 4
    offset = float(header["vox_offset"])
    if not math.isfinite(offset) or offset != int(offset) or offset < 0:
        raise input_error(path, f"invalid header: vox_offset={offset:g}")
    offset_bytes = int(offset)
    if offset_bytes == 0:
        warnings.append(f"vox_offset is 0; data assumed to start at byte {minimum} (as nibabel does)")
        return minimum
    if offset_bytes < minimum:
        raise input_error(path, f"invalid header: vox_offset={offset_bytes} lies inside the header")
    if offset_bytes > MAX_VOX_OFFSET:
        raise input_error(
            path, f"invalid header: vox_offset={offset_bytes} implausibly large (over {MAX_VOX_OFFSET} bytes)"
        )
    return offset_bytes


#: Voxels converted per step while streaming (bounds the scratch memory to a few MB).
CHUNK_VOXELS = 1 << 18


def scaling_of(path: Path, header: nib.Nifti1Header) -> tuple[float, float] | None:
    """``(scl_slope, scl_inter)`` to apply as nibabel does, None for none; non-finite scaling is refused."""
    slope = float(header["scl_slope"])
    inter = float(header["scl_inter"])
    if math.isinf(slope):
        raise input_error(path, f"non-finite scaling: scl_slope={slope}")
    scaled = slope != 0 and math.isfinite(slope)
    if scaled and not math.isfinite(inter):
        raise input_error(path, f"non-finite scaling: scl_inter={inter} with scl_slope={slope:g}")
    if not scaled or (slope == 1 and inter == 0):
        return None
    return slope, inter


def _as_float32(path: Path, stored: np.ndarray, scaling: tuple[float, float] | None) -> np.ndarray:
    """One chunk of stored values as float32 (scaled), refusing values beyond float32 range."""
    with np.errstate(over="ignore", invalid="ignore"):
        wide = stored.astype(np.float64)
        converted = (wide * scaling[0] + scaling[1] if scaling else wide).astype(np.float32)
    overflow = np.isinf(converted) & np.isfinite(wide)
    if np.any(overflow):
        if scaling:
            raise input_error(
                path,
                f"scaling overflow: scl_slope={scaling[0]:g}, scl_inter={scaling[1]:g} turn stored values into "
                "numbers beyond float32 range",
            )
        raise input_error(path, "extreme intensities: values beyond float32 range (> 3.4e38)")
    return converted


def _stream_float32(
    path: Path, stream: _BoundedStream, dtype: np.dtype, n_voxels: int, scaling: tuple[float, float] | None
) -> tuple[np.ndarray, int]:
    """Decompress and convert the data chunk by chunk into one float32 array: ``(data, bytes read)``.

    Only the float32 result (4 bytes per voxel) and one chunk exist at any time; a gzip bomb
    of float64 zeros never holds its 8 bytes per voxel in memory.
    """
    out = np.empty(n_voxels, dtype=np.float32)
    chunk_voxels = min(CHUNK_VOXELS, n_voxels)
    buffer = bytearray(chunk_voxels * dtype.itemsize)
    view = memoryview(buffer)
    done = 0
    while done < n_voxels:
        count = min(chunk_voxels, n_voxels - done)
        got = stream.readinto(view[: count * dtype.itemsize])
        if got < count * dtype.itemsize:
            return out, done * dtype.itemsize + got
        out[done : done + count] = _as_float32(path, np.frombuffer(buffer, dtype=dtype, count=count), scaling)
        done += count
    return out, n_voxels * dtype.itemsize


def _read_header(path: Path, stream: _BoundedStream) -> tuple[type[nib.Nifti1Header], bytes, nib.Nifti1Header]:
    first4 = stream.read(4)
    header_class, endian = _header_class(path, first4)
    rest = stream.read(header_class.template_dtype.itemsize - 4)
    block = first4 + rest
    if len(block) < header_class.template_dtype.itemsize:
        raise input_error(path, f"file too short for a NIfTI header ({len(block)} bytes)")
    header = header_class(binaryblock=block, endianness=endian, check=False)
    _check_magic(path, header)
    return header_class, block, header


def header_shape(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """The data shape a NIfTI header declares, read with the same checks as validation (header only).

    Unlike ``nibabel.load(path).shape`` a ``dim[0]`` outside 1..7 is an error (nibabel takes it as a
    sign of the other byte order and reads garbage dimensions).

    Raises
    ------
    InputError
        Not a NIfTI file, bad magic, ``dim[0]`` out of range, non-positive sizes.
    """
    path = Path(os.fsdecode(path))
    check_regular_file(path)
    with open_raw(path) as raw:
        leading = raw.read(2)
        raw.seek(0)
        _, _, header = _read_header(path, _BoundedStream(path, raw, leading == GZIP_MAGIC))
    dim = [int(value) for value in header["dim"]]
    if not 1 <= dim[0] <= 7:
        raise input_error(path, f"invalid header: dim[0]={dim[0]} (must be 1..7)")
    shape = tuple(dim[1 : dim[0] + 1])
    if any(size <= 0 for size in shape):
        raise input_error(path, f"invalid header dimensions {shape} (sizes must be positive)")
    return shape


def read_raw_nifti(path: Path, max_voxels: int, min_slices: int) -> RawNifti:
    """Read and structurally validate a single-file NIfTI (``.nii`` or ``.nii.gz``).

    Parameters
    ----------
    path : Path
        The file.
    max_voxels, min_slices : int
        Limits checked from the header before any data is read.

    Returns
    -------
    RawNifti
        Header (with extensions when readable), stored shape and the data as flat float32,
        decompressed and converted chunk by chunk (peak memory: the float32 result plus a few MB).

    Raises
    ------
    InputError
        For any problem, with a one-line reason.
    """
    status = check_regular_file(path)
    warnings: list[str] = []
    with open_raw(path) as raw:
        try:
            leading = raw.read(2)
            raw.seek(0)
        except OSError as error:
            raise input_error(path, f"read error ({error.strerror or error})") from None
        compressed = leading == GZIP_MAGIC
        name = path.name.lower()
        if compressed and not name.endswith(".gz"):
            warnings.append("file is gzip-compressed although its name does not end in .gz")
        if not compressed and name.endswith(".gz"):
            warnings.append("file is not gzip-compressed although its name ends in .gz")
        stream = _BoundedStream(path, raw, compressed)
        header_class, block, header = _read_header(path, stream)
        shape = check_dims(path, header, max_voxels, min_slices)
        dtype = check_datatype(path, header)
        offset = _data_offset(path, header, warnings)
        scaling = scaling_of(path, header)
        n_voxels = math.prod(shape)
        expected = n_voxels * dtype.itemsize
        slice_bytes = shape[0] * shape[1] * dtype.itemsize
        if not compressed and status.st_size < offset + expected:
            raise input_error(
                path,
                f"data size disagrees with header: dims {'x'.join(map(str, shape))} ({dtype.name}) need "
                f"{expected} bytes after offset {offset}, file has {max(status.st_size - offset, 0)}",
            )
        extension_bytes = stream.read(offset - len(block))
        data, data_read = _stream_float32(path, stream, dtype, n_voxels, scaling)
        if len(extension_bytes) + len(block) < offset or data_read < expected:
            got = max(len(extension_bytes) + len(block) + data_read - offset, 0)
            raise input_error(
                path,
                f"data size disagrees with header: dims {'x'.join(map(str, shape))} ({dtype.name}) need "
                f"{expected} bytes after offset {offset}, stream has {got}",
            )
        surplus = len(stream.read(slice_bytes))
        if surplus >= slice_bytes:
            raise input_error(
                path,
                f"data size disagrees with header: at least {surplus} bytes (one slice or more) beyond "
                f"the {expected} bytes that dims {'x'.join(map(str, shape))} imply",
            )
        # A short read means the stream reached its end, so gzip has verified its CRC and length.
    header = _with_extensions(header_class, block + extension_bytes, header, warnings)
    return RawNifti(header=header, shape=shape, data=data, compressed=compressed, warnings=warnings)


def _with_extensions(header_class, prefix: bytes, header, warnings: list[str]):
    if len(prefix) <= len(header.binaryblock) or prefix[len(header.binaryblock)] == 0:
        return header
    try:
        return header_class.from_fileobj(io.BytesIO(prefix), check=False)
    except Exception as error:  # noqa: BLE001 - any failure only drops the extensions
        warnings.append(f"header extensions unreadable and dropped ({type(error).__name__})")
        return header
