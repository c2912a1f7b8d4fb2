"""export.decode_by_kind: per-kind decoding settings chosen on validation, written to the card
and used by the engine for images of that kind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from handmade_models import write_nuclei_model
from PIL import Image
from synthetic_images import disk_labels

from export.decode_by_kind import main
from segcore.inference.engine import Engine


def write_dsb(data: Path, fluorescence: int, brightfield: int) -> None:
    """Disks in the DSB layout: bright on dark (fluorescence), dark on light (bright-field)."""
    for i in range(fluorescence + brightfield):
        image, labels = disk_labels(64, 80, seed=i, n=4)
        if i >= fluorescence:
            image = 255 - image
        folder = data / f"img{i:02d}"
        (folder / "images").mkdir(parents=True)
        (folder / "masks").mkdir()
        Image.fromarray(image).save(folder / "images" / f"img{i:02d}.png")
        for j in range(1, int(labels.max()) + 1):
            Image.fromarray(((labels == j) * 255).astype(np.uint8)).save(
                folder / "masks" / f"m{j}.png"
            )


def test_a_kind_with_enough_val_images_gets_its_own_settings(tmp_path: Path, capsys):
    data = tmp_path / "stage1_train"
    write_dsb(data, fluorescence=20, brightfield=5)
    model = write_nuclei_model(tmp_path)
    card = json.loads(model.with_suffix(".json").read_text())
    card["instances"]["min_size_px"] = 500  # drops every 113-pixel disk: a poor setting
    card |= {"split": "0.6,0.2,0.2", "seed": 0, "test_metrics": {"n_images": 5}}
    model.with_suffix(".json").write_text(json.dumps(card))
    fluorescent = np.where(disk_labels(64, 80, seed=99, n=4)[1][..., None] > 0, 230, 20)
    fluorescent = fluorescent.repeat(3, axis=2).astype(np.uint8)
    assert Engine(model).predict(fluorescent).count == 0

    assert main([str(model), "--data", str(data), "--min-images", "3"]) == 0
    out = capsys.readouterr().out
    written = json.loads(model.with_suffix(".json").read_text())
    own = written["instances_by_kind"]
    assert set(own) == {"fluorescence"} and own["fluorescence"]["min_size_px"] <= 32
    report = written["instances_by_kind_val"]
    assert (
        report["fluorescence"]["after"]["dsb_score"] > report["fluorescence"]["before"]["dsb_score"]
    )
    assert "kept" in report["brightfield"] and "kept" in report["he"]
    assert written["test_metrics_one_decoding"] == {"n_images": 5}
    assert written["test_metrics"]["n_images"] == 5 and "dsb_score" in written["test_metrics"]
    assert "fluorescence:" in out and "own settings" in out and "wrote" in out
    engine = Engine(model)
    assert engine.predict(fluorescent).count >= 3  # the fluorescence settings are used
    assert engine.decoding_for(255 - fluorescent).min_size_px == 500  # bright-field: the card's


def test_a_model_without_instances_is_refused(tmp_path: Path, capsys):
    from handmade_models import save_conv1x1_sigmoid_model

    model = save_conv1x1_sigmoid_model(tmp_path / "bright.onnx", 3, [1.0] * 3, [0.0])
    card = {"name": "bright", "dataset": "dsb", "input_size": 32, "channels": 3}
    model.with_suffix(".json").write_text(json.dumps(card))
    assert main([str(model), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not an instance model" in err and "Traceback" not in err
