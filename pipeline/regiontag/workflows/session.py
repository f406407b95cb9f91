"""One session end to end: load, stage by body part, score, write outputs.

``run_session`` is the only function that calls the stages in order. It never
raises for a bad session: failures become ``SessionResult(status="failed")``
with a one-line reason, and the traceback goes to ``<session>/log.txt``.
Outputs are written atomically and ``provenance.json`` last, so a session
with a current provenance fingerprint is complete and is skipped on re-run.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd

from regiontag import outputs
from regiontag.atlas.cord import load_cord_atlas
from regiontag.atlas.lesion_table import lesion_table, summarise_lesions
from regiontag.brain.stage import brain_atlas, process_brain
from regiontag.config import Config
from regiontag.cord.bodypart import assess_body_part
from regiontag.cord.stage import process_cord
from regiontag.inputs.dicom import conversion_record
from regiontag.inputs.nifti_io import input_error
from regiontag.inputs.scan import InputError, load_scan
from regiontag.outputs.provenance import (
    build_provenance,
    fingerprint_of,
    input_checksums,
    input_record,
    pattern_library_dir,
    utc_now,
)
from regiontag.outputs.session_folder import REQUIRED_FILES, SessionFolder
from regiontag.patterns.library import load_library
from regiontag.patterns.scoring import score_session
from regiontag.report.session import write_session_report
from regiontag.stage import StageOutput, stage_callback, stage_reached
from regiontag.types import ScanInput, Session, SessionResult
from regiontag.workflows.progress import publish_stage

LOGGER = logging.getLogger("regiontag")

__all__ = ["REQUIRED_FILES", "input_checksums", "is_complete", "merge_findings", "one_line", "run_session"]


def is_complete(
    session: Session,
    output_dir: Path,
    config: Config,
    *,
    patterns_dir: Path | None = None,
    cord_atlas_path: Path | None = None,
) -> bool:
    """True when the session's outputs exist and were made from the same inputs, parameters and definitions."""
    return SessionFolder(Path(output_dir) / session.session_id).is_complete(
        lambda: fingerprint_of(session, config, patterns_dir=patterns_dir, cord_atlas_path=cord_atlas_path)
    )


def one_line(error: BaseException) -> str:
    """A one-line reason for a failure (input errors are already phrased for users)."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (InputError,)):
        return message
    return f"{type(error).__name__}: {message}"


def _decide_body_parts(session: Session, images: dict[Path, Any], warnings: list[str]) -> list[ScanInput]:
    """Body part of the scans the name and config left open, from the image; weak evidence -> a warning."""
    decided = []
    for scan in session.scans:
        if scan.body_part is None:
            decision = assess_body_part(images[scan.path])
            scan = ScanInput(scan.path, scan.sequence, scan.sequence_source, decision.body_part,
                             f"image: {decision.reason}")
            if decision.warning:
                warnings.append(f"{scan.path.name}: {decision.warning}")
        decided.append(scan)
    return decided


def _group_by_body_part(scans: list[ScanInput], images: dict[Path, Any], warnings: list[str]) -> dict:
    groups: dict[str, dict[str, Any]] = {}
    for scan in scans:
        group = groups.setdefault(scan.body_part, {})
        if scan.sequence in group:
            warnings.append(f"{scan.path.name}: second {scan.body_part} {scan.sequence} scan ignored")
            continue
        group[scan.sequence] = images[scan.path]
    return groups


def _run_stages(groups: dict, config: Config, session_dir: Path, cord_atlas_path, timings) -> dict[str, StageOutput]:
    results: dict[str, StageOutput] = {}
    if "brain" in groups:
        start = time.perf_counter()
        LOGGER.info("brain stage: %s (bias correction, registration to the template, lesions, regions)",
                    ", ".join(groups["brain"]))
        results["brain"] = process_brain(groups["brain"], config, session_dir)
        timings["brain"] = time.perf_counter() - start
        _log_stage_end("brain", results["brain"], timings["brain"])
    if "cord" in groups:
        start = time.perf_counter()
        LOGGER.info("cord stage: %s (segmentation, cord atlas, lesions, levels)", ", ".join(groups["cord"]))
        atlas = load_cord_atlas(cord_atlas_path or config.cord.atlas_path)
        results["cord"] = process_cord(groups["cord"], config, atlas, session_dir)
        results["cord"].tables.setdefault(outputs.CORD_LABELS_TSV, outputs.label_table(atlas.leaf_names))
        timings["cord"] = time.perf_counter() - start
        _log_stage_end("cord", results["cord"], timings["cord"])
    return results


def _log_stage_end(body_part: str, result: StageOutput, seconds: float) -> None:
    """One log line per finished stage: time, lesions found, warnings."""
    count, volume = result.findings.get("n_lesions"), result.findings.get("lesion_volume_ml")
    found = f"{count} lesion(s), {volume:.2f} ml" if isinstance(volume, (int, float)) else "lesions not measured"
    LOGGER.info("%s stage done in %.1f s: %s; %d warning(s)", body_part, seconds, found, len(result.warnings))
    for warning in result.warnings:
        LOGGER.warning("%s stage: %s", body_part, warning)


def _write_stage_files(results: dict[str, StageOutput], session_dir: Path) -> None:
    """Images and extra tables; cord lesion maps get a ``cord_`` prefix beside brain ones."""
    for body_part, result in results.items():
        for name, image in result.images.items():
            if body_part == "cord" and not name.startswith("cord_"):
                outputs.write_nifti(image, session_dir / f"cord_{name}")
                if "brain" in results:
                    continue
            outputs.write_nifti(image, session_dir / name)
        for name, table in result.tables.items():
            outputs.write_csv(table, session_dir / name)


def merge_findings(results: dict[str, StageOutput], scans: list[ScanInput]) -> dict[str, Any]:
    """Session findings (findings.json) from the stages' findings."""
    findings: dict[str, Any] = {
        "body_parts_imaged": sorted(results),
        "sequences": {bp: sorted({s.sequence for s in scans if s.body_part == bp}) for bp in results},
        "lesion_volume_ml": {},
        "n_lesions": {},
        "features": {},
    }
    for body_part, result in results.items():
        stage_findings = dict(result.findings)
        findings["lesion_volume_ml"][body_part] = stage_findings.pop("lesion_volume_ml", None)
        findings["n_lesions"][body_part] = stage_findings.pop("n_lesions", None)
        findings["features"].update(stage_findings.pop("features", {}))
        for key, value in stage_findings.items():
            findings.setdefault(key, {})
            findings[key] = value if not isinstance(findings[key], dict) else {**findings[key], body_part: value}
    return findings


def lesion_tables(results: dict[str, StageOutput], config: Config, cord_atlas_path=None) -> tuple[pd.DataFrame, dict]:
    """``lesions.csv`` rows of every body part (input space of its reference scan) and their summaries.

    Template coordinates come from the stage's ``to_template`` (the brain's registration to MNI152);
    cord lesions, whose cord is not registered to PAM50, have none (their vertebral levels and column
    shares place them).
    """
    tables, summaries = [], {}
    for body_part, result in results.items():
        images = result.images
        labels_name = outputs.CORD_LABELS_NII if body_part == "cord" else outputs.ATLAS_LABELS_NII
        if outputs.LESIONS_NII not in images or labels_name not in images:
            continue
        atlas = (load_cord_atlas(cord_atlas_path or config.cord.atlas_path) if body_part == "cord"
                 else brain_atlas())
        table = lesion_table(images[outputs.LESIONS_NII], images[labels_name], atlas,
                             zmap=images.get(outputs.ZMAP_NII), to_template=result.to_template,
                             config=config.involvement)
        tables.append(table)
        summaries[body_part] = summarise_lesions(table, min_lesion_ml=config.involvement.focal_min_lesion_ml)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=outputs.LESION_COLUMNS[1:])
    return table, summaries


def _score(region_table: pd.DataFrame, findings: dict, config: Config, patterns_dir) -> pd.DataFrame:
    library = load_library(pattern_library_dir(patterns_dir, config))
    return score_session(region_table, findings, library, config.scoring)


def run_session(
    session: Session,
    output_dir: Path,
    config: Config,
    *,
    force: bool = False,
    cord_atlas_path: Path | None = None,
    patterns_dir: Path | None = None,
    report: bool | None = None,
) -> SessionResult:
    """Process one session and write its outputs under ``output_dir/<session_id>``.

    Parameters
    ----------
    session : Session
    output_dir : Path
    config : Config
    force : bool
        Redo a session even when its outputs are complete and current.
    cord_atlas_path, patterns_dir : Path, optional
        Alternative cord atlas (PAM50 folder) and pattern library.
    report : bool, optional
        Write ``report.html`` (default: ``config.report.enabled``).

    Returns
    -------
    SessionResult
        Never raises for bad input; ``status`` is ``ok``, ``warning``, ``failed`` or ``skipped``.
    """
    folder = SessionFolder(Path(output_dir) / session.session_id)
    started_clock = time.perf_counter()
    paths = {"patterns_dir": patterns_dir, "cord_atlas_path": cord_atlas_path}
    if not force and is_complete(session, output_dir, config, **paths):
        return _skipped_result(session, folder)
    warnings: list[str] = []
    with folder.start_attempt(), stage_callback(lambda stage: publish_stage(session.session_id, stage)):
        try:
            LOGGER.info("session %s: %d scan(s)", session.session_id, len(session.scans))
            stage_reached("load")
            result = _process(session, folder.path, config, warnings, cord_atlas_path, patterns_dir, report)
            result.seconds = time.perf_counter() - started_clock
        except Exception as error:  # noqa: BLE001 - a session never takes the batch down
            LOGGER.error("session %s failed:\n%s", session.session_id, traceback.format_exc())
            result = SessionResult(session.session_id, "failed", one_line(error), time.perf_counter() - started_clock)
    folder.write_status(result)
    return result


def _skipped_result(session: Session, folder: SessionFolder) -> SessionResult:
    """The result of a complete session, from its status record and its tables on disk."""
    previous = folder.read_status() or {}
    return SessionResult(
        session.session_id,
        "skipped",
        previous.get("error", ""),
        float(previous.get("seconds") or 0.0),
        tuple(previous.get("body_parts", ())),
        float(previous.get("lesion_volume_ml") or float("nan")),
        previous.get("top_pattern", ""),
        region_table=folder.read_table(outputs.REGIONS_CSV, outputs.REGION_COLUMNS),
        scores=folder.read_table(outputs.SCORES_CSV, outputs.SCORE_COLUMNS),
    )


def _process(session, session_dir, config, warnings, cord_atlas_path, patterns_dir, report) -> SessionResult:
    started = utc_now()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    images, inputs = {}, []
    for scan in session.scans:  # a broken file is reported as such, before any naming problem
        if scan.path.is_dir() and not scan.path.name.lower().endswith((".nii", ".nii.gz")):
            # a DICOM folder dcm2niix could not convert: the reason is in sequence_source
            raise InputError(scan.sequence_source)
        image, scan_warnings = load_scan(scan.path, config.limits)
        images[scan.path] = image
        warnings.extend(scan_warnings)
    for scan in session.scans:
        if scan.sequence == "unknown":
            raise input_error(scan.path, "cannot tell the sequence from the file name (name it e.g. *_FLAIR.nii.gz, "
                                         "*_T2w.nii.gz, or map it in discovery.sequence_overrides)")
    checksums = input_checksums(session)
    body_part_warnings: list[str] = []
    scans = _decide_body_parts(session, images, body_part_warnings)
    warnings.extend(body_part_warnings)
    for scan in scans:
        dicom = {"dicom": conversion_record(scan.path)} if conversion_record(scan.path) else {}
        inputs.append(input_record(
            scan.path, images[scan.path], checksums[scan.path.name], sequence=scan.sequence,
            sequence_source=scan.sequence_source, body_part=scan.body_part, body_part_source=scan.body_part_source,
            **dicom,
        ))
    timings["load"] = time.perf_counter() - start
    LOGGER.info("loaded in %.1f s: %s", timings["load"], "; ".join(
        f"{scan.path.name} ({scan.sequence}, {scan.body_part}: {scan.body_part_source})" for scan in scans))
    groups = _group_by_body_part(scans, images, warnings)
    results = _run_stages(groups, config, session_dir, cord_atlas_path, timings)
    for result in results.values():
        warnings.extend(result.warnings)
    _write_stage_files(results, session_dir)
    region_table = pd.concat([r.region_table for r in results.values()], ignore_index=True)
    region_table.insert(0, "session", session.session_id)
    outputs.write_csv(region_table, session_dir / outputs.REGIONS_CSV, outputs.REGION_COLUMNS)
    findings = merge_findings(results, scans)
    lesions, findings["lesions"] = lesion_tables(results, config, cord_atlas_path)
    lesions.insert(0, "session", session.session_id)
    outputs.write_csv(lesions, session_dir / outputs.LESIONS_CSV, outputs.LESION_COLUMNS)
    outputs.write_json(findings, session_dir / outputs.FINDINGS_JSON)
    start = time.perf_counter()
    stage_reached("score")
    scores = _score(region_table, findings, config, patterns_dir)
    scores.insert(0, "session", session.session_id)
    outputs.write_csv(scores, session_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    timings["scoring"] = time.perf_counter() - start
    flagged = body_part_warnings + [w for r in results.values() for w in r.warnings]
    status = "warning" if flagged else "ok"
    top = scores[scores["match"].astype(bool)].sort_values("rank") if len(scores) else scores
    LOGGER.info("scoring: %d pattern(s) scored; %s", len(scores),
                f"top match {top['pattern'].iloc[0]}" if len(top) else "no pattern matched")
    reference = {bp: str(next(s.path for s in scans if s.body_part == bp)) for bp in results}
    atlases = {bp: r.qc.get("atlas", {}) for bp, r in results.items()}
    fingerprint = fingerprint_of(session, config, patterns_dir=patterns_dir, cord_atlas_path=cord_atlas_path,
                                 checksums=checksums)
    provenance = build_provenance(
        session_id=session.session_id, status=status, inputs=inputs, reference=reference, config=config,
        atlases=atlases, timings=timings, warnings=warnings, qc={bp: r.qc for bp, r in results.items()},
        fingerprint=fingerprint, started=started,
    )
    provenance["attempt"] = SessionFolder(session_dir).read_attempt() or {}  # a retry names the lost attempt
    if report if report is not None else config.report.enabled:
        _write_report(session_dir, provenance, warnings, timings)
        LOGGER.info("report.html written in %.1f s", timings["report"])
    outputs.write_json(provenance, session_dir / outputs.PROVENANCE_JSON)
    LOGGER.info("session %s %s; provenance.json written last", session.session_id, status)
    lesion_ml = float(sum(v for v in findings["lesion_volume_ml"].values() if v is not None))
    return SessionResult(
        session.session_id, status, "; ".join(warnings[:3]) if status == "warning" else "", 0.0,
        tuple(sorted(results)), lesion_ml, str(top["pattern"].iloc[0]) if len(top) else "", tuple(warnings),
        region_table=region_table.reindex(columns=outputs.REGION_COLUMNS),
        scores=scores.reindex(columns=outputs.SCORE_COLUMNS),
    )


def _write_report(session_dir: Path, provenance: dict, warnings: list[str], timings: dict) -> None:
    """Write report.html (needs provenance on disk first: written provisionally, then final)."""
    start = time.perf_counter()
    stage_reached("report")
    try:
        outputs.write_json(provenance, session_dir / outputs.PROVENANCE_JSON)
        write_session_report(session_dir)
    except Exception as error:  # noqa: BLE001 - a report failure must not fail the analysis
        LOGGER.warning("report not written: %s\n%s", error, traceback.format_exc())
        warnings.append(f"report not written: {one_line(error)}")
    timings["report"] = time.perf_counter() - start
