"""Benchmark: time HTML report generation against a session's run time (target: under 15%).

By default the reference is measured in the same run: one brain phantom
(``ms-brain``) and one cord phantom (``b12-subacute-combined-degeneration``)
are generated with ``regiontag phantom`` (fixed seeds), each is processed by
the real session runner (``regiontag.workflows.session.run_session``) with the report
switched off, and that wall time is the session reference.  Then
``write_session_report`` is timed on the session's outputs (one warm-up, then
the median of ``--repeats``).  The cord session is run once untimed first so
that neither time includes import or atlas-loading costs a batch worker pays
only once; the brain session (about a minute) is timed on its first run.

With ``--session-dir`` an existing session output folder is timed instead and,
unless ``--session-seconds`` is given, its run time is the sum of the
``timings`` in its ``provenance.json`` (without the ``report`` stage).

Usage::

    python benchmarks/bench_report.py [--repeats 5] [--cord-session-repeats 3] [--body-parts cord brain]
                                      [--work-dir DIR]
    python benchmarks/bench_report.py --session-dir OUTPUT_DIR/sub-01 [--session-seconds S]
    python benchmarks/bench_report.py --png

With ``--png`` only the PNG writers are compared (a few seconds, no
phantom): our encoder and Pillow encode the same synthetic report images
(brain montages as RGB and as grey-palette images, cord figures, a batch
chart as RGB and adaptive palette) and time ratios and byte sizes are
printed; this is the measurement behind ``report.png`` using its own writer
for RGB images and Pillow for palette images.

Prints, per body part, report seconds, session seconds and their ratio with
PASS/FAIL against 15%; exit status 1 when a ratio exceeds the target.
Native thread pools (ITK, BLAS) are left as the environment sets them; set
``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1`` to mimic one batch worker per core.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 0.15
#: (body part, phantom pattern, seed) of the sessions the benchmark generates.
PHANTOMS = (
    ("cord", "b12-subacute-combined-degeneration", 3),
    ("brain", "ms-brain", 3),
)


def time_report(session_dir: Path, repeats: int) -> float:
    """Median wall time (s) of ``write_session_report`` over ``repeats`` runs (after one warm-up)."""
    from regiontag.report.session import write_session_report

    write_session_report(session_dir)  # warm-up: imports, font cache
    durations = []
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        write_session_report(session_dir)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def provenance_seconds(session_dir: Path) -> tuple[float | None, float | None]:
    """(session run time without the report, report time) from ``provenance.json`` timings.

    The session runner records the report as the ``report`` stage; every
    other stage counts as session run time.  None where absent.
    """
    try:
        timings = json.loads((session_dir / "provenance.json").read_text(encoding="utf-8")).get("timings") or {}
    except (OSError, ValueError):
        return None, None
    stages = {stage: float(v) for stage, v in timings.items() if isinstance(v, (int, float))}
    report = stages.pop("report", None)
    return (sum(stages.values()) if stages else None), report


def report_line(name: str, report_seconds: float, session_seconds: float, source: str) -> bool:
    """Print one result line; True when within the target."""
    ratio = report_seconds / session_seconds
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(
        f"{name:<6} report {report_seconds:6.3f} s | session {session_seconds:7.2f} s ({source}) | "
        f"ratio {ratio:6.1%} (target <= {TARGET_RATIO:.0%}) {verdict}",
        flush=True,
    )
    return ratio <= TARGET_RATIO


def generate_phantom(work_dir: Path, body_part: str, pattern: str, seed: int) -> Path:
    """Write one phantom with ``regiontag phantom`` and return its input folder (``inputs/<session>``)."""
    from regiontag.cli.main import main as regiontag

    phantom_dir = work_dir / f"phantom-{body_part}"
    with contextlib.redirect_stdout(io.StringIO()):
        status = regiontag(["phantom", str(phantom_dir), "--pattern", pattern, "--seed", str(seed)])
    if status != 0:
        raise RuntimeError(f"regiontag phantom --pattern {pattern} --seed {seed} failed (exit {status})")
    return phantom_dir / "inputs"


def time_session(input_dir: Path, output_dir: Path, repeats: int, warm_up: bool) -> tuple[Path, float]:
    """Run the session runner on the one session of ``input_dir`` without report; (its folder, median seconds)."""
    from regiontag.config import load_config
    from regiontag.inputs.discovery import discover_sessions
    from regiontag.workflows.session import run_session

    config = load_config(None)
    sessions = discover_sessions(input_dir, config)
    if len(sessions) != 1:
        raise RuntimeError(f"{input_dir}: expected one session, found {len(sessions)}")
    session = sessions[0]
    (output_dir / session.session_id / "report.html").unlink(missing_ok=True)  # from an earlier benchmark
    durations = []
    for attempt in range(max(repeats, 1) + int(warm_up)):
        started = time.perf_counter()
        result = run_session(session, output_dir, config, force=True, report=False)
        elapsed = time.perf_counter() - started
        if result.status not in ("ok", "warning"):
            raise RuntimeError(f"session {session.session_id} {result.status}: {result.error}")
        if attempt >= int(warm_up):
            durations.append(elapsed)
    session_dir = output_dir / session.session_id
    if (session_dir / "report.html").exists():
        raise RuntimeError(f"{session_dir}: report.html written although the report was switched off")
    return session_dir, statistics.median(durations)


def measure_phantoms(work_dir: Path, repeats: int, cord_session_repeats: int, body_parts: list[str]) -> bool:
    """Generate, run and report the benchmark phantoms of ``body_parts``; print one line per body part."""
    ok = True
    for body_part, pattern, seed in PHANTOMS:
        if body_part not in body_parts:
            continue
        started = time.perf_counter()
        input_dir = generate_phantom(work_dir, body_part, pattern, seed)
        print(f"{body_part}: phantom {pattern} seed {seed} generated in {time.perf_counter() - started:.1f} s",
              flush=True)
        cord = body_part == "cord"
        session_dir, session_seconds = time_session(
            input_dir, work_dir / f"results-{body_part}", cord_session_repeats if cord else 1, warm_up=cord
        )
        source = "run_session, no report" + (f", median of {cord_session_repeats} after warm-up" if cord else "")
        ok &= report_line(body_part, time_report(session_dir, repeats), session_seconds, source)
    return ok


# --- PNG encoders: our writer (report.png) against Pillow, on synthetic report images -----------------------------

def _synthetic_volumes(shape: tuple[int, int, int], zooms: tuple[float, float, float], seed: int) -> dict:
    """A smooth head-like volume with a mask (ellipsoid), a dozen atlas labels and a few spherical lesions."""
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = np.sqrt((grid**2).sum(axis=0))
    mask = (radius < 0.8).astype(np.uint8)
    texture = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 2.0)
    background = np.where(radius < 0.95, 400 + 150 * np.cos(6 * radius) + 300 * texture, 0).astype(np.float32)
    angle = np.arctan2(grid[1], grid[0])
    labels = (mask * (1 + ((angle + np.pi) / (2 * np.pi) * 6).astype(int) % 6 + 6 * (grid[2] > 0))).astype(np.int16)
    lesion = np.zeros(shape, np.uint8)
    for _ in range(6):
        centre = rng.uniform(-0.5, 0.5, 3)
        lesion[np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(axis=0)) < rng.uniform(0.04, 0.1)] = 1
    affine = np.diag(list(zooms) + [1.0])
    return {"background": background, "mask": mask, "labels": labels, "lesion": lesion,
            "zooms": zooms, "affine": affine}


def report_images() -> list[tuple[str, "object", "object"]]:
    """Representative report images, built synthetically with the report's own figure code.

    Returns (name, pixels, palette) triples as they reach the encoder:
    uint8 RGB (palette None) or uint8 palette indices with their (n, 3) palette.
    """
    import numpy as np
    from PIL import Image

    from regiontag.report import charts, figures, figures_cord

    captured: list[tuple[str, np.ndarray]] = []
    real = figures.png_data_uri

    def capture(rgb, colors="rgb"):
        captured.append((colors, np.ascontiguousarray(figures.to_uint8(rgb) if rgb.dtype != np.uint8 else rgb)[..., :3]))
        return "data:"

    names = []
    for module in (figures, figures_cord, charts):
        module.png_data_uri = capture
    try:
        brain = _synthetic_volumes((160, 192, 160), (1.0, 1.0, 1.0), seed=1)
        cuts = {axis: figures.choose_cuts(brain["lesion"], brain["mask"], axis, 5, 4) for axis in (2, 1, 0)}
        overlays = [figures.Overlay(brain["labels"], kind="label-outline", alpha=0.95),
                    figures.Overlay(brain["mask"], kind="outline", color=figures.MASK_COLOR, alpha=0.9)]
        figures.montage(brain["background"], brain["zooms"], brain["affine"], overlays, cuts,
                        crop=brain["mask"], window_mask=brain["mask"], panel_px=208)
        names.append("brain registration montage")
        figures.montage(brain["background"], brain["zooms"], brain["affine"], [figures.Overlay(brain["lesion"])],
                        cuts, crop=brain["mask"], window_mask=brain["mask"], panel_px=208)
        names.append("brain lesion montage")
        cord = _synthetic_volumes((64, 64, 240), (0.5, 0.5, 1.0), seed=2)
        cord_mask = np.zeros_like(cord["mask"])
        cord_mask[26:38, 27:37, 10:230] = 1
        cord_labels = cord_mask * cord["labels"].clip(0, 6)
        lesion = cord_mask * cord["lesion"]
        lesion[28:34, 29:35, 100:140] = 1
        figures_cord.cord_sagittal_figure(cord["background"], cord_mask, lesion, cord["zooms"], "40 mm C4-C6")
        names.append("cord sagittal figure")
        levels = figures_cord.axial_levels(cord_mask, lesion)
        figures_cord.cord_axial_figure(cord["background"], cord_mask, cord_labels, lesion, cord["zooms"],
                                       cord["affine"], {v: f"region {v}" for v in range(1, 7)}, levels)
        names.append("cord axial figure")
        import pandas as pd

        sessions = pd.DataFrame({"lesion_volume_ml": np.random.default_rng(3).lognormal(1.0, 1.0, 200)})
        charts.volume_figure(sessions)
        names.append("batch volume chart")
    finally:
        for module in (figures, figures_cord, charts):
            module.png_data_uri = real
    images = []
    for name, (colors, rgb) in zip(names, captured):
        images.append((f"{name} (RGB)", rgb, None))
        if colors != "rgb":
            picture = Image.fromarray(rgb, mode="RGB")
            if colors == "grey":
                picture = picture.quantize(palette=figures._grey_palette(), dither=Image.Dither.NONE)
            else:
                picture = picture.quantize(256, method=Image.Quantize.FASTOCTREE)
            entries = np.asarray(picture.getpalette(), dtype=np.uint8).reshape(-1, 3)
            images.append((f"{name} ({colors} palette)", np.asarray(picture), entries))
    return images


def pillow_png(pixels, palette=None, level: int = 1, strategy: int | None = None) -> bytes:
    """Pillow's PNG of the same pixels at zlib ``level`` (``strategy``: a zlib strategy, None for Pillow's default).

    Pillow filters true-colour rows adaptively (it tries every filter per row)
    and leaves palette rows unfiltered.
    """
    from PIL import Image

    buffer = io.BytesIO()
    options = {"compress_level": level} if strategy is None else {"compress_level": level, "compress_type": strategy}
    if palette is None:
        Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG", **options)
    else:
        picture = Image.fromarray(pixels)  # mode "L"; putpalette makes it "P"
        picture.putpalette(palette.reshape(-1).tolist())
        picture.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _best_of(function, repeats: int) -> float:
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return min(durations)


def up_filtered_palette_png(indices, palette, level: int = 1) -> bytes:
    """An indexed PNG the way ``report.png`` wrote palette images before it left them to Pillow.

    Rows "Up"-filtered, run-length zlib strategy; kept here, and only here, so
    that the benchmark still shows what our own writer would give on palette images.
    """
    import struct
    import zlib

    import numpy as np

    from regiontag.report.png import FILTER_UP, PNG_SIGNATURE

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    rows, columns = indices.shape
    filtered = np.empty((rows, columns + 1), dtype=np.uint8)
    filtered[:, 0] = FILTER_UP
    filtered[0, 1:] = indices[0]
    np.subtract(indices[1:], indices[:-1], out=filtered[1:, 1:])
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = compressor.compress(filtered.tobytes()) + compressor.flush()
    header = struct.pack(">IIBBBBB", columns, rows, 8, 3, 0, 0, 0)
    return b"".join([PNG_SIGNATURE, chunk(b"IHDR", header), chunk(b"PLTE", palette.tobytes()),
                     chunk(b"IDAT", data), chunk(b"IEND", b"")])


def compare_png_encoders(repeats: int = 15) -> None:
    """Print, per representative image, time and size of our PNG writer and of Pillow's.

    Both get the same pixels (palette images: the same indices and palette,
    after the quantisation the report does anyway, which is not timed) and the
    same zlib level.  "ours" is ``report.png.encode_png`` for RGB images and,
    for palette images, ``up_filtered_palette_png`` (our writer's former
    palette mode); Pillow runs with its default zlib strategy (what the report
    uses for palette images: ``report.png.encode_palette_png``) and, for
    palette images, also with the run-length strategy of our writer.  The
    decoded pixels of every PNG are checked to be equal.  Ratio = Pillow time
    / our time (> 1: ours is faster).
    """
    import zlib

    import numpy as np
    from PIL import Image

    from regiontag.report.png import PNG_COMPRESS_LEVEL, encode_png

    def ours_of(pixels, palette):
        return encode_png(pixels) if palette is None else up_filtered_palette_png(pixels, palette, PNG_COMPRESS_LEVEL)

    print(f"PNG encoders, zlib level {PNG_COMPRESS_LEVEL}, best of {repeats} (ratio = Pillow time / ours):",
          flush=True)
    print(f"{'image':<42} {'pixels':>9} {'Pillow':>7} {'ours ms':>8} {'Pillow ms':>9} {'ratio':>6} "
          f"{'ours kB':>8} {'Pillow kB':>9}")
    for name, pixels, palette in report_images():
        ours = ours_of(pixels, palette)
        expected = np.asarray(Image.open(io.BytesIO(ours)).convert("RGB"))
        ours_s = _best_of(lambda: ours_of(pixels, palette), repeats)
        variants = [("default", None)] + ([("RLE", zlib.Z_RLE)] if palette is not None else [])
        for variant, strategy in variants:
            theirs = pillow_png(pixels, palette, PNG_COMPRESS_LEVEL, strategy)
            if not np.array_equal(np.asarray(Image.open(io.BytesIO(theirs)).convert("RGB")), expected):
                raise RuntimeError(f"{name}: our PNG and Pillow's decode to different pixels")
            theirs_s = _best_of(lambda: pillow_png(pixels, palette, PNG_COMPRESS_LEVEL, strategy), repeats)
            size = f"{pixels.shape[1]}x{pixels.shape[0]}"
            print(f"{name:<42} {size:>9} {variant:>7} {ours_s * 1e3:8.2f} {theirs_s * 1e3:9.2f} "
                  f"{theirs_s / ours_s:6.2f} {len(ours) / 1e3:8.1f} {len(theirs) / 1e3:9.1f}", flush=True)

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--session-dir", type=Path, help="time this existing session output folder")
    parser.add_argument("--session-seconds", type=float, help="with --session-dir: its run time, seconds")
    parser.add_argument("--repeats", type=int, default=5, help="timed report runs (median), after a warm-up")
    parser.add_argument("--cord-session-repeats", type=int, default=3, help="timed cord session runs (median)")
    parser.add_argument("--body-parts", nargs="+", choices=[p[0] for p in PHANTOMS], default=[p[0] for p in PHANTOMS],
                        help="phantoms to measure (default: cord and brain)")
    parser.add_argument("--work-dir", type=Path, help="keep the phantoms and outputs here (default: temporary)")
    parser.add_argument("--png", action="store_true",
                        help="only compare the PNG encoders (ours against Pillow) on synthetic report images")
    args = parser.parse_args(argv)

    if args.png:
        compare_png_encoders()
        return 0

    if args.session_dir:
        recorded_session, recorded_report = provenance_seconds(args.session_dir)
        seconds = args.session_seconds or recorded_session
        if not seconds:
            parser.error("no timings in provenance.json: pass --session-seconds")
        source = "given" if args.session_seconds else "provenance timings"
        if recorded_report is not None:
            print(f"report stage recorded by the session runner: {recorded_report:.2f} s")
        within = report_line(args.session_dir.name, time_report(args.session_dir, args.repeats), seconds, source)
        return 0 if within else 1

    threads = os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "default")
    print(f"ITK threads: {threads}; cores: {os.cpu_count()}", flush=True)
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        ok = measure_phantoms(args.work_dir, args.repeats, args.cord_session_repeats, args.body_parts)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_report_") as temporary:
            ok = measure_phantoms(Path(temporary), args.repeats, args.cord_session_repeats, args.body_parts)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
