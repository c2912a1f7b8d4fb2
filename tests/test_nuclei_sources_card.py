"""bench.nuclei_sources --card: a model's means per source and kind written into its card."""

from __future__ import annotations

import json
from pathlib import Path

from bench.nuclei_sources import into_card


def test_means_per_source_go_into_the_card_beside_what_it_held(tmp_path: Path):
    card = tmp_path / "m.json"
    card.write_text(json.dumps({"name": "m", "input_size": 64, "channels": 3}))
    result = {
        "monuseg2018": {"by_kind": {"he": {"n_images": 3, "aji": 0.61}}, "images": []},
        "dsb2018": {"by_kind": {"all": {"n_images": 60, "aji": 0.7}}, "images": []},
    }
    into_card(card, "test", result, tmp_path / "nuclei_sources-test-m.json")
    data = json.loads(card.read_text())
    assert data["name"] == "m" and data["input_size"] == 64
    by_source = data["test_metrics_by_source"]
    assert by_source["monuseg2018"]["he"]["aji"] == 0.61
    assert by_source["file"] == "nuclei_sources-test-m.json"
    assert "images" not in by_source["dsb2018"]
