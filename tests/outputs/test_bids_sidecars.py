"""Column descriptions of regiontag's tables and the sidecars of derived images."""

from __future__ import annotations

from regiontag.outputs.bids_sidecars import COLUMN_DESCRIPTIONS, TABLE_COLUMNS, image_sidecar, table_sidecar


def test_every_column_of_the_contract_tables_is_described():
    for table, columns in TABLE_COLUMNS.items():
        missing = [column for column in columns if column not in COLUMN_DESCRIPTIONS]
        assert not missing, f"{table}: {missing}"
    assert all(entry["Description"] for entry in COLUMN_DESCRIPTIONS.values())


def test_table_sidecar_describes_exactly_the_columns_given():
    sidecar = table_sidecar(["side", "lesion_volume_ml", "something_new"])
    assert list(sidecar) == ["side", "lesion_volume_ml", "something_new"]
    assert sidecar["side"]["Levels"]["both"].startswith("the whole region")
    assert sidecar["lesion_volume_ml"]["Units"] == "mL"
    assert sidecar["something_new"] == {"Description": "something_new (see the regiontag README)"}


def test_image_sidecar_fields():
    assert image_sidecar("z", ["bids:raw:a.nii.gz"]) == {"Description": "z", "Sources": ["bids:raw:a.nii.gz"]}
    assert image_sidecar("m", [], spatial_reference="bids:raw:a.nii.gz", mask_type="Brain") == {
        "Description": "m", "Sources": [], "SpatialReference": "bids:raw:a.nii.gz", "Type": "Brain"}
