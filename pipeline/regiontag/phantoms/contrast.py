"""MR contrast and image degradation: tissue intensities per sequence, bias field, ghosting, Rician noise.

Intensities are relative (x 1000) and follow the usual clinical ordering and
ratios: FLAIR GM/WM about 1.24, CSF dark; T2w WM < GM (ratio 1.33) < CSF;
T1w CSF < GM < WM; DWI trace (b = 1000) CSF dark, lesions bright only where
diffusion is restricted.  Full-grade lesions are twice the white-matter
signal on FLAIR and T2w (graded lesions 1.4-2x), dark on T1w.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Relative signal of each compartment per sequence (x 1000 in the images).
CONTRASTS: dict[str, dict[str, float]] = {
    "FLAIR": {"csf": 0.08, "gm": 0.68, "wm": 0.55, "lesion": 1.10, "bone": 0.04, "scalp": 0.85},
    "T2w": {"csf": 1.60, "gm": 0.80, "wm": 0.60, "lesion": 1.20, "bone": 0.05, "scalp": 0.90},
    "T1w": {"csf": 0.20, "gm": 0.60, "wm": 0.85, "lesion": 0.50, "bone": 0.05, "scalp": 1.00},
    "DWI": {"csf": 0.10, "gm": 0.62, "wm": 0.55, "lesion": 0.65, "bone": 0.02, "scalp": 0.05},
}
#: DWI lesion signal when the lesions restrict diffusion.
DWI_RESTRICTED_LESION = 1.30
#: Signal scale of the images.
SCALE = 1000.0
#: DWI has about half the SNR of the structural sequences at the same nominal setting.
DWI_SNR_FACTOR = 0.5


def sequence_signal(
    sequence: str,
    tissue: np.ndarray,
    lesion_grade: np.ndarray,
    head: np.ndarray | None,
    texture: np.ndarray,
    restricted_diffusion: bool,
) -> np.ndarray:
    """Noise-free signal of one sequence on the anatomy grid.

    Parameters
    ----------
    sequence : str
        Key of :data:`CONTRASTS`.
    tissue : numpy.ndarray
        CSF, GM, WM fractions ``(3, X, Y, Z)``.
    lesion_grade : numpy.ndarray
        Fraction of the tissue (GM + WM) signal replaced by lesion signal.
    head : numpy.ndarray or None
        Bone and scalp fractions ``(2, X, Y, Z)`` (None: skull-stripped image).
    texture : numpy.ndarray
        Smooth multiplicative tissue texture (about 1).
    restricted_diffusion : bool
        Lesions bright on DWI.

    Returns
    -------
    numpy.ndarray
        float32 signal.
    """
    if sequence not in CONTRASTS:
        raise ValueError(f"sequence {sequence!r} cannot be simulated; choose from {sorted(CONTRASTS)}")
    contrast = CONTRASTS[sequence]
    lesion = DWI_RESTRICTED_LESION if (sequence == "DWI" and restricted_diffusion) else contrast["lesion"]
    healthy = tissue[1] * contrast["gm"] + tissue[2] * contrast["wm"]
    solid = tissue[1] + tissue[2]
    signal = tissue[0] * contrast["csf"] + healthy * (1 - lesion_grade) + solid * lesion_grade * lesion
    signal *= texture
    if head is not None:
        signal += head[0] * contrast["bone"] + head[1] * contrast["scalp"]
    return (signal * SCALE).astype(np.float32)


def white_matter_signal(sequence: str) -> float:
    """Nominal noise-free white-matter signal (the SNR reference)."""
    return CONTRASTS[sequence]["wm"] * SCALE


def bias_field(
    grid_affine: np.ndarray, shape: tuple[int, ...], strength: float, rng: np.random.Generator
) -> np.ndarray:
    """Smooth multiplicative field ``exp(b)``, ``|b| <= strength``, from random long-wavelength cosines.

    Built in scanner millimetres (wavelengths 200-500 mm plus a linear
    gradient), so it does not depend on the voxel size.
    """
    if strength <= 0:
        return np.ones(shape, dtype=np.float32)
    # evaluated on a grid 4 voxels coarse (the field varies over >100 mm), then interpolated
    step = 4
    coarse_shape = tuple(int(np.ceil(n / step)) + 1 for n in shape)
    index = np.indices(coarse_shape, dtype=np.float32).reshape(3, -1) * step
    points = grid_affine[:3, :3] @ index + grid_affine[:3, 3:4]
    points -= points.mean(axis=1, keepdims=True)
    log_field = (rng.normal(size=3) / 150.0) @ points
    for _ in range(4):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        wavelength = rng.uniform(200, 500)
        log_field += rng.normal() * np.cos(2 * np.pi * (direction @ points) / wavelength + rng.uniform(0, 2 * np.pi))
    log_field -= log_field.mean()
    log_field *= strength / max(float(np.abs(log_field).max()), 1e-9)
    coarse = np.exp(log_field).reshape(coarse_shape).astype(np.float32)
    fine_index = np.ogrid[tuple(slice(0, n) for n in shape)]
    coordinates = np.broadcast_arrays(*[axis / step for axis in fine_index])
    return ndimage.map_coordinates(coarse, np.stack(coordinates), order=1, output=np.float32)


def motion_ghosting(image: np.ndarray, severity: float, rng: np.random.Generator, phase_axis: int = 1) -> np.ndarray:
    """Ghosts along the phase-encoding axis from periodic motion during k-space sampling.

    Each phase-encoding line is acquired with the head displaced by
    ``severity * 2 voxels * sin(2 pi line / period + phase)``; the displacement
    becomes a phase ramp on that k-space line.

    Parameters
    ----------
    image : numpy.ndarray
        Noise-free magnitude image.
    severity : float
        0 = none, 1 = strong ghosts.
    rng : numpy.random.Generator
    phase_axis : int
        Voxel axis of phase encoding.
    """
    if severity <= 0:
        return image
    n_lines = image.shape[phase_axis]
    frequencies = np.fft.fftfreq(n_lines)
    period = rng.uniform(6, 16)
    lines = np.arange(n_lines)
    displacement = severity * 2.0 * np.sin(2 * np.pi * lines / period + rng.uniform(0, 2 * np.pi))
    # k-space line with frequency f is acquired at time order of its index (sequential ordering)
    ramp = np.exp(-2j * np.pi * frequencies * displacement)
    shape = [1] * image.ndim
    shape[phase_axis] = n_lines
    spectrum = np.fft.fft(image, axis=phase_axis) * ramp.reshape(shape)
    return np.abs(np.fft.ifft(spectrum, axis=phase_axis)).astype(np.float32)


def rician_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise with standard deviation ``sigma`` per channel."""
    if sigma <= 0:
        return image.astype(np.float32)
    real = image + rng.normal(0, sigma, size=image.shape).astype(np.float32)
    imaginary = rng.normal(0, sigma, size=image.shape).astype(np.float32)
    return np.sqrt(real**2 + imaginary**2).astype(np.float32)


def background_sigma(background: np.ndarray) -> float:
    """Noise sigma from pure-noise (Rayleigh) background voxels: ``std / sqrt(2 - pi / 2)``."""
    return float(np.std(background) / np.sqrt(2 - np.pi / 2))


def head_layers(brain_distance_mm: np.ndarray, rng: np.random.Generator, shape_noise: np.ndarray) -> np.ndarray:
    """Bone (2-8 mm outside the brain) and scalp (8-14 mm) fractions with irregular thickness.

    Parameters
    ----------
    brain_distance_mm : numpy.ndarray
        Distance to the brain mask (0 inside).
    rng : numpy.random.Generator
    shape_noise : numpy.ndarray
        Smooth unit-variance noise on the same grid (thickness variation).
    """
    wobble = 1.5 * shape_noise
    inner = 2.0 + wobble * 0.5
    middle = 8.0 + wobble
    outer = 14.0 + wobble
    bone = np.clip(brain_distance_mm - inner + 0.5, 0, 1) * np.clip(middle - brain_distance_mm + 0.5, 0, 1)
    scalp = np.clip(brain_distance_mm - middle + 0.5, 0, 1) * np.clip(outer - brain_distance_mm + 0.5, 0, 1)
    scalp *= rng.uniform(0.85, 1.0)
    return np.stack([bone, scalp]).astype(np.float32)
