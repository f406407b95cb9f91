"""Bounded low-level NIfTI reading: header checks before data, one-line reasons."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest

from regiontag.config import LimitsConfig
from regiontag.inputs import nifti_io as validation_io
from regiontag.inputs.nifti_io import (
    InputError,
    check_datatype,
    check_dims,
    display_name,
    input_error,
    read_raw_nifti,
)
from regiontag.inputs.scan import load_scan
from tests.inputs import corpus


def test_voxel_limit_checked_before_reading_data(tmp_path, monkeypatch):
    path = tmp_path / "big.nii"
    path.write_bytes(corpus.nifti_bytes(corpus.phantom_data((40, 40, 40))))
    bytes_read = []
    original_read = validation_io._BoundedStream.read

    def counting_read(self, size):
        chunk = original_read(self, size)
        bytes_read.append(len(chunk))
        return chunk

    monkeypatch.setattr(validation_io._BoundedStream, "read", counting_read)
    with pytest.raises(InputError, match="64000 voxels .* exceeds the limit of 1000"):
        load_scan(path, LimitsConfig(max_voxels=1000))
    assert sum(bytes_read) == 348  # the header only, none of the 256 kB of data


def test_unreadable_file_reason(tmp_path, monkeypatch):
    path = tmp_path / "locked.nii.gz"
    path.write_bytes(corpus.gz(corpus.nifti_bytes(corpus.phantom_data())))

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(validation_io.os, "open", deny)
    with pytest.raises(InputError, match=r"^locked\.nii\.gz: permission denied"):
        load_scan(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_really_unreadable(tmp_path):
    path = tmp_path / "locked.nii"
    path.write_bytes(corpus.nifti_bytes(corpus.phantom_data()))
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        load_scan(path)


def test_display_name_escapes_control_characters() -> None:
    assert display_name("/data/sub-01/scan_FLAIR.nii.gz") == "scan_FLAIR.nii.gz"
    assert display_name("evil\nname\t.nii") == "evil\\nname\\t.nii"
    error = input_error("/x/evil\n.nii", "bad\n  header   value")
    assert isinstance(error, InputError) and isinstance(error, ValueError)
    assert str(error) == "evil\\n.nii: bad header value"


def _header(shape, dtype=np.int16) -> nib.Nifti1Header:
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    return header


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((10, 10), "2D image"),
        ((10, 10, 1), "2D image"),
        ((10, 10, 10, 3), "4D image with 3 volumes"),
        ((10, 10, 2), "slab only 2 voxels thick"),
        ((100, 100, 100), "1000000 voxels (100x100x100) exceeds the limit of 5000"),
    ],
)
def test_check_dims_reasons(shape, message) -> None:
    with pytest.raises(InputError, match=r"^scan\.nii: ") as info:
        check_dims(validation_io.Path("scan.nii"), _header(shape), max_voxels=5000, min_slices=3)
    assert message in str(info.value)


def test_check_dims_accepts_a_single_volume_4d() -> None:
    assert check_dims(validation_io.Path("s.nii"), _header((8, 9, 10, 1)), 10_000, 3) == (8, 9, 10, 1)


def test_check_datatype() -> None:
    assert check_datatype(validation_io.Path("s.nii"), _header((4, 4, 4), np.float32)) == np.float32
    header = _header((4, 4, 4), np.complex64)
    with pytest.raises(InputError, match="unsupported datatype complex64"):
        check_datatype(validation_io.Path("s.nii"), header)
    header["datatype"] = 12345
    with pytest.raises(InputError, match="unknown datatype code 12345"):
        check_datatype(validation_io.Path("s.nii"), header)


@pytest.mark.parametrize("compressed", [False, True])
def test_read_raw_nifti_returns_header_shape_and_exact_bytes(tmp_path, compressed) -> None:
    data = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    path = tmp_path / ("scan.nii.gz" if compressed else "scan.nii")
    nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])).to_filename(path)
    raw = read_raw_nifti(path, max_voxels=10_000, min_slices=3)
    assert raw.shape == (6, 7, 8) and raw.compressed is compressed and not raw.is_nifti2
    assert raw.warnings == []
    np.testing.assert_array_equal(raw.data, data.ravel(order="F").astype(np.float32))
    assert raw.header.get_data_dtype() == np.int16


def test_read_raw_nifti_warns_about_a_misleading_suffix_and_rejects_truncation(tmp_path) -> None:
    content = corpus.nifti_bytes(corpus.phantom_data())
    named_gz = tmp_path / "plain.nii.gz"
    named_gz.write_bytes(content)
    raw = read_raw_nifti(named_gz, 10**6, 3)
    assert raw.warnings == ["file is not gzip-compressed although its name ends in .gz"]
    truncated = tmp_path / "cut.nii"
    truncated.write_bytes(content[: len(content) - 100])
    with pytest.raises(InputError, match=r"^cut\.nii: data size disagrees with header"):
        read_raw_nifti(truncated, 10**6, 3)
    gz_named_plain = tmp_path / "packed.nii"
    gz_named_plain.write_bytes(gzip.compress(content))
    assert "gzip-compressed although its name does not end in .gz" in read_raw_nifti(gz_named_plain, 10**6, 3).warnings[0]
    assert os.path.getsize(gz_named_plain) < len(content)


def test_validation_streams_the_data_without_a_full_copy(tmp_path) -> None:
    """Issue 17 item 5: the data are decompressed straight into the float32 result (no raw copy, no join)."""
    import tracemalloc

    shape = (200, 200, 150)  # 6 M voxels: 48 MB as float64 on disk, 24 MB as float32 in memory
    bomb = corpus.write_gzip_bomb(tmp_path / "ones.nii.gz", 1.0, shape)
    float32_bytes = 4 * int(np.prod(shape))
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="constant image"):
            load_scan(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < float32_bytes + 16e6, f"peak {peak / 1e6:.0f} MB for {float32_bytes / 1e6:.0f} MB of float32"
    raw = read_raw_nifti(bomb, max_voxels=10**8, min_slices=3)
    assert raw.data.dtype == np.float32 and raw.data.size == np.prod(shape) and float(raw.data.max()) == 1.0
