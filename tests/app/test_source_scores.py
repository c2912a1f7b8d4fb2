"""The cross-source table of the Benchmarks page, from bench.nuclei_sources' result files."""

from __future__ import annotations

import json
from pathlib import Path

from segcore.app.source_scores import source_table


def write(folder: Path, name: str, subset: str, aji: float) -> None:
    result = {
        "subset": subset,
        "results": {
            "models/new.onnx": {
                "monuseg2018": {"by_kind": {"he": {"n_images": 3, "aji": aji, "dice": 0.8}}},
                "dsb2018": {"by_kind": {"all": {"n_images": 60, "aji": 0.7}, "phase": {}}},
            }
        },
    }
    (folder / name).write_text(json.dumps(result))


def test_every_file_gives_rows_naming_it(tmp_path: Path):
    write(tmp_path, "nuclei_sources-val-new.json", "val", 0.5)
    write(tmp_path, "nuclei_sources-test-new.json", "test", 0.55)
    (tmp_path / "nuclei_sources-broken.json").write_text("{")
    (tmp_path / "other.json").write_text("{}")
    table = source_table(tmp_path)
    assert len(table) == 4 and set(table["split"]) == {"val", "test"}
    he = table[(table["source"] == "monuseg2018") & (table["split"] == "test")].iloc[0]
    assert he["AJI"] == 0.55 and he["kind"] == "H&E / colour" and he["model"] == "new"
    assert he["file"] == "nuclei_sources-test-new.json"


def test_no_files_no_rows(tmp_path: Path):
    assert source_table(tmp_path).empty
