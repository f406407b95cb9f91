"""Write a NIfTI volume as a DICOM series (one MR slice per file) with pydicom, for the DICOM input tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest


def write_dicom_series(image: nib.Nifti1Image, folder: Path, *, series_description: str, body_part: str = "",
                       series_number: int = 3) -> list[Path]:
    """One DICOM file per slice along the third voxel axis, geometry taken from the NIfTI affine.

    DICOM's patient coordinates are LPS: the RAS affine is flipped on x and y; the first voxel axis runs
    along the rows (``ImageOrientationPatient`` row cosine), the second down the columns.
    """
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
    data = np.asarray(image.dataobj, dtype=np.float64)
    slope = max(float(data.max()), 1e-6) / 4000.0
    row_step, column_step = np.linalg.norm(affine[:3, 0]), np.linalg.norm(affine[:3, 1])
    orientation = [*(affine[:3, 0] / row_step), *(affine[:3, 1] / column_step)]
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    written = []
    for k in range(data.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.Manufacturer, ds.MagneticFieldStrength = "MR", "SIEMENS", 3
        ds.PatientName, ds.PatientID, ds.StudyDate, ds.StudyTime = "Phantom^Cord", "P0001", "20260101", "120000"
        ds.SeriesDescription, ds.ProtocolName, ds.SeriesNumber = series_description, series_description, series_number
        if body_part:
            ds.BodyPartExamined = body_part
        ds.EchoTime, ds.RepetitionTime = 90, 3000
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [float(v) for v in affine[:3, :3] @ np.array([0.0, 0.0, k]) + affine[:3, 3]]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in orientation]
        ds.PixelSpacing = [float(column_step), float(row_step)]
        ds.SliceThickness = float(np.linalg.norm(affine[:3, 2]))
        pixels = np.round(data[:, :, k].T / slope).astype(np.uint16)
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.8g}", "0"
        ds.PixelData = pixels.tobytes()
        path = folder / f"IM{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written
