"""Tests of regiontag.inputs.scan: the broken-input corpus, tolerated oddities, folder walking, fuzzing."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

from tests.inputs import corpus
import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regiontag.config import LimitsConfig
from regiontag.inputs.scan import InputError, check_niimg, load_scan, safe_input_files
from regiontag.inputs.nifti_io import display_name

FUZZ_LIMITS = LimitsConfig(max_voxels=200_000)


@pytest.fixture(scope="module")
def corpus_cases(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    cases = corpus.make_corpus(tmp_path_factory.mktemp("corpus"))
    return {path.name: (path, fragment) for path, fragment in cases}


@pytest.fixture(scope="module")
def tolerated_cases(tmp_path_factory) -> dict[str, tuple[Path, str | None]]:
    cases = corpus.make_tolerated_inputs(tmp_path_factory.mktemp("tolerated"))
    return {path.name: (path, fragment) for path, fragment in cases}


def test_corpus_has_at_least_30_distinct_cases(corpus_cases):
    assert len(corpus_cases) >= 30
    assert len({fragment for _, fragment in corpus_cases.values()}) >= 30


@pytest.mark.parametrize("name", corpus.CASE_NAMES)
def test_corpus_case_rejected_with_its_reason(corpus_cases, name):
    path, fragment = corpus_cases[name]
    with pytest.raises(InputError) as caught:
        load_scan(path)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert fragment in message
    assert message.startswith(display_name(path) + ": ")
    assert "\n" not in message and "\r" not in message


@pytest.mark.parametrize("name", [name for name, _, _ in corpus.TOLERATED])
def test_tolerated_input_loads_with_its_warning(tolerated_cases, name):
    path, fragment = tolerated_cases[name]
    image, warnings = load_scan(path)
    data = np.asanyarray(image.dataobj)
    assert image.shape == corpus.SHAPE
    assert data.dtype == np.float32 and np.all(np.isfinite(data))
    if fragment is None:
        assert warnings == []
    else:
        assert any(fragment in warning for warning in warnings), warnings
    assert all("\n" not in warning and warning.startswith(name + ": ") for warning in warnings)


def test_values_affine_and_header_kept(tmp_path):
    data = corpus.phantom_data()
    image = nib.Nifti1Image((data * 100).astype(np.int16), corpus.AFFINE)
    image.header.set_slope_inter(0.25, -3.0)
    image.header["descrip"] = b"scanner export"
    image.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"hello regiontag"))
    path = tmp_path / "sub-01_FLAIR.nii.gz"
    image.to_filename(path)
    loaded, warnings = load_scan(path)
    assert warnings == []
    assert loaded.get_data_dtype() == np.float32
    np.testing.assert_allclose(loaded.get_fdata(), nib.load(path).get_fdata(), rtol=1e-6)
    np.testing.assert_allclose(loaded.affine, corpus.AFFINE, atol=1e-5)
    assert nib.aff2axcodes(loaded.affine) == ("L", "A", "S")
    assert loaded.header["descrip"] == b"scanner export"
    assert loaded.header.extensions[0].get_content() == b"hello regiontag"
    # written back, the image reads identically (no double scaling)
    loaded.to_filename(tmp_path / "again.nii")
    np.testing.assert_allclose(nib.load(tmp_path / "again.nii").get_fdata(), loaded.get_fdata())


@pytest.mark.parametrize("nifti2", [False, True])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti1_nifti2_plain_and_gzip(tmp_path, nifti2, suffix):
    data = corpus.phantom_data()
    image_class = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    path = tmp_path / f"scan{suffix}"
    image_class(data, corpus.AFFINE).to_filename(path)
    loaded, warnings = load_scan(str(path))
    assert warnings == []
    np.testing.assert_array_equal(loaded.get_fdata(dtype=np.float32), data)


def test_limits_from_config(tmp_path):
    path = tmp_path / "four_slices.nii"
    nib.Nifti1Image(corpus.phantom_data((20, 20, 4)), np.eye(4)).to_filename(path)
    assert load_scan(path)[0].shape == (20, 20, 4)
    with pytest.raises(InputError, match="at least 5 slices"):
        load_scan(path, LimitsConfig(min_slices=5))
    with pytest.raises(InputError, match="exceeds 0.5 mm"):
        load_scan(path, LimitsConfig(max_voxel_size_mm=0.5, min_voxel_size_mm=0.1))


def test_check_niimg_path_and_image(tmp_path):
    mask = np.zeros(corpus.SHAPE, np.uint8)
    path = tmp_path / "empty_mask.nii.gz"
    nib.Nifti1Image(mask, corpus.AFFINE).to_filename(path)
    with pytest.raises(InputError, match="all voxels are zero"):
        load_scan(path)
    checked = check_niimg(path)  # masks may be empty: no intensity checks
    assert checked.shape == corpus.SHAPE and not np.any(checked.get_fdata())
    image = nib.Nifti1Image(corpus.phantom_data(corpus.SHAPE + (1,)), corpus.AFFINE)
    assert check_niimg(image).shape == corpus.SHAPE
    same = nib.Nifti1Image(corpus.phantom_data(), corpus.AFFINE)
    assert check_niimg(same) is same
    with pytest.raises(InputError, match="4D image"):
        check_niimg(nib.Nifti1Image(corpus.phantom_data((8, 8, 6, 2)), np.eye(4)))
    broken = nib.Nifti1Image(corpus.phantom_data(), corpus.AFFINE)
    broken.affine[0, 0] = np.nan  # nibabel refuses such an affine in the constructor
    with pytest.raises(InputError, match="non-finite affine"):
        check_niimg(broken)
    flat = nib.Nifti1Image(corpus.phantom_data(), corpus.AFFINE)
    flat.affine[:, 1] = 0
    with pytest.raises(InputError, match="singular affine"):
        check_niimg(flat)
    with pytest.raises(TypeError):
        check_niimg(42)
    with pytest.raises(InputError, match="file not found"):
        check_niimg(tmp_path / "missing.nii")


# --- property-based tests -----------------------------------------------------------------------

_PERMUTATIONS = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]


def _rotation(angles: tuple[float, float, float]) -> np.ndarray:
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


@st.composite
def valid_images(draw):
    shape = tuple(draw(st.integers(3, 7)) for _ in range(3))
    zooms = [draw(st.floats(0.3, 6.0)) for _ in range(3)]
    permutation = draw(st.sampled_from(_PERMUTATIONS))
    flips = np.array([draw(st.sampled_from([-1.0, 1.0])) for _ in range(3)])
    angles = tuple(draw(st.floats(-0.35, 0.35)) for _ in range(3))
    linear = _rotation(angles) @ np.eye(3)[:, permutation] @ np.diag(flips * zooms)
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = [draw(st.floats(-150, 150)) for _ in range(3)]
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.int32, np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    values = np.random.default_rng(seed).uniform(0, 200, shape)
    values[0, 0, 0] = 0
    values[-1, -1, -1] = 250
    image_class = draw(st.sampled_from([nib.Nifti1Image, nib.Nifti2Image]))
    suffix = draw(st.sampled_from([".nii", ".nii.gz"]))
    return image_class(values.astype(dtype), affine), suffix


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=valid_images(), name=st.sampled_from(["scan", "sub 01 é", "患者_flair"]))
def test_random_valid_images_load_and_round_trip_canonical(tmp_path_factory, case, name):
    image, suffix = case
    path = tmp_path_factory.mktemp("valid") / f"{name}{suffix}"
    image.to_filename(path)
    loaded, warnings = load_scan(path)
    assert warnings == []
    expected = np.asanyarray(image.dataobj).astype(np.float32)
    np.testing.assert_array_equal(loaded.get_fdata(dtype=np.float32), expected)
    np.testing.assert_allclose(loaded.affine, image.affine, atol=1e-4)
    assert nib.aff2axcodes(loaded.affine) == nib.aff2axcodes(image.affine)
    canonical = nib.as_closest_canonical(loaded)
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    back = canonical.as_reoriented(
        nib.orientations.ornt_transform(
            nib.io_orientation(canonical.affine), nib.io_orientation(loaded.affine)
        )
    )
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), np.asanyarray(loaded.dataobj))
    np.testing.assert_allclose(back.affine, loaded.affine, atol=1e-6)


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory):
    data = corpus.phantom_data((8, 9, 7))
    plain = corpus.nifti_bytes(data)
    folder = tmp_path_factory.mktemp("fuzz_base")
    (folder / "base.nii").write_bytes(plain)
    reference = load_scan(folder / "base.nii")[0]
    return plain, corpus.gz(plain), reference


def _assert_usable(image: nib.Nifti1Image) -> None:
    data = np.asanyarray(image.dataobj)
    assert data.ndim == 3 and data.dtype == np.float32 and np.all(np.isfinite(data))
    assert np.all(np.isfinite(image.affine)) and np.linalg.det(image.affine[:3, :3]) != 0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    compressed=st.booleans(),
    mutations=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6),
    truncate=st.one_of(st.none(), st.floats(0, 1)),
)
def test_random_byte_corruption_loads_identically_or_raises_input_error(
    tmp_path_factory, fuzz_base, compressed, mutations, truncate
):
    plain, packed, reference = fuzz_base
    content = bytearray(packed if compressed else plain)
    for position, value in mutations:
        content[int(position * len(content))] = value
    if truncate is not None:
        content = content[: int(truncate * len(content))]
    path = tmp_path_factory.mktemp("fuzz") / ("scan.nii.gz" if compressed else "scan.nii")
    path.write_bytes(bytes(content))
    started = time.monotonic()
    try:
        loaded, _ = load_scan(path, FUZZ_LIMITS)
    except InputError as error:
        assert "\n" not in str(error) and str(error).startswith(path.name + ": ")
    else:
        _assert_usable(loaded)
        if compressed:  # the gzip CRC guards every byte of the data
            np.testing.assert_array_equal(np.asanyarray(loaded.dataobj), np.asanyarray(reference.dataobj))
            np.testing.assert_allclose(loaded.affine, reference.affine)
    assert time.monotonic() - started < 5


_HEADER_FIELDS = [name for name in nib.Nifti1Header.template_dtype.names if name not in ("sizeof_hdr",)]


@st.composite
def header_edits(draw):
    """(field, index or None, value) drawn within the field's storage type."""
    dtype = nib.Nifti1Header.template_dtype
    field = draw(st.sampled_from(_HEADER_FIELDS + ["sizeof_hdr"]))
    base, shape = dtype[field].base, dtype[field].shape
    index = draw(st.integers(0, shape[0] - 1)) if shape else None
    if base.kind in "iu":
        info = np.iinfo(base)
        small = st.integers(max(int(info.min), -3), min(int(info.max), 12))
        value = draw(st.one_of(st.integers(int(info.min), int(info.max)), small))
    elif base.kind == "f":
        value = draw(st.one_of(st.floats(width=32), st.floats(-20, 20), st.sampled_from([0.0, -1.0, 1e30])))
    else:
        value = draw(st.binary(max_size=base.itemsize))
    return field, index, value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(header_edits(), min_size=1, max_size=4), compressed=st.booleans())
def test_random_header_values_never_crash(tmp_path_factory, fuzz_base, edits, compressed):
    plain = bytearray(fuzz_base[0])
    header = nib.Nifti1Header(binaryblock=bytes(plain[:348]), check=False)
    for field, index, value in edits:
        if index is None:
            header[field] = value
        else:
            header[field][index] = value
    content = header.binaryblock + bytes(plain[348:])
    path = tmp_path_factory.mktemp("header_fuzz") / ("scan.nii.gz" if compressed else "scan.nii")
    path.write_bytes(gzip.compress(content, mtime=0) if compressed else content)
    try:
        loaded, warnings = load_scan(path, FUZZ_LIMITS)
    except InputError as error:
        assert "\n" not in str(error)
    else:
        _assert_usable(loaded)
        assert all("\n" not in warning for warning in warnings)


@pytest.mark.real
def test_real_scans_load_unchanged(real_brain_dir, real_cord_dir):
    scans = sorted(real_brain_dir.glob("*.nii.gz")) + [real_cord_dir / "t2.nii.gz"]
    candidates, skipped = safe_input_files(real_brain_dir)
    assert candidates == sorted(real_brain_dir.rglob("*.nii.gz")) and skipped == []
    for path in scans:
        loaded, warnings = load_scan(path)
        reference = nib.load(path)
        assert warnings == []
        assert loaded.shape == reference.shape and loaded.ndim == 3
        np.testing.assert_array_equal(np.asanyarray(loaded.dataobj), reference.get_fdata(dtype=np.float32))
        np.testing.assert_array_equal(loaded.affine, reference.affine)
    assert nib.aff2axcodes(load_scan(real_cord_dir / "t2.nii.gz")[0].affine) == ("P", "S", "R")


_PEAK_SCRIPT = """
import resource, sys
from regiontag.inputs.scan import InputError, load_scan
try:
    load_scan(sys.argv[1])
    print("loaded")
except InputError as error:
    print(error)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


@pytest.mark.slow
@pytest.mark.parametrize(("value", "reason"), [(0.0, "all voxels are zero"), (1.0, "constant image")])
def test_gzip_bomb_validation_peak_is_the_float32_volume(tmp_path, value, reason):
    """Issue 17 item 5: 1000 x 1000 x 149 float64 (1.2 MB .nii.gz) peaked at 2.35 GB; now its float32 (0.6 GB) + Python."""
    import subprocess
    import sys

    bomb = corpus.write_gzip_bomb(tmp_path / f"bomb_{value:g}.nii.gz", value)
    assert bomb.stat().st_size < 2e6
    result = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(bomb)], capture_output=True, text=True,
                            timeout=600, check=True)
    message, peak = result.stdout.strip().splitlines()
    assert reason in message
    float32_bytes = 4 * np.prod(corpus.BOMB_SHAPE)
    assert int(peak) < float32_bytes + 200e6, f"peak RSS {int(peak) / 1e6:.0f} MB"
