"""Keras -> ONNX conversion details: float32 clones of mixed-precision models, fixed-size fallback."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def keras_modules():
    """TensorFlow-side modules, imported only when a test here runs."""
    import keras

    import export.convert as convert
    from segcore.models import build, main_output_model

    return convert, keras, build, main_output_model


def run_onnx(proto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


def test_mixed_precision_model_exports_in_float32(keras_modules):
    convert, keras, build, main_output_model = keras_modules
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = build("unet", base_filters=4, depth=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model = convert.float32_model(main_output_model(mixed))
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    x = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    proto, dynamic = convert.to_onnx(model, 3, 32)
    assert dynamic
    np.testing.assert_allclose(run_onnx(proto, x), model.predict(x, verbose=0), atol=1e-5)


def test_float32_model_is_identity_for_float32(keras_modules):
    convert, _, build, _ = keras_modules
    model = build("unet", base_filters=4, depth=2)
    assert convert.float32_model(model) is model


def test_untraceable_sizes_fall_back_to_fixed_input(keras_modules):
    convert, _, build, main_output_model = keras_modules
    model = main_output_model(build("attention_unet", base_filters=4, depth=2))
    proto, dynamic = convert.to_onnx(model, 3, 32)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    expected = model.predict(x, verbose=0)
    if not dynamic:
        assert [d.dim_value for d in dims] == [0, 32, 32, 3]
    np.testing.assert_allclose(run_onnx(proto, x), expected, atol=1e-5)
    assert proto.graph.output[0].name == "mask"


def test_deep_supervision_model_exports_its_main_output(keras_modules):
    convert, _, build, main_output_model = keras_modules
    full = build("unetpp", base_filters=4, depth=2, deep_supervision=True)
    x = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    assert np.asarray(full.predict(x, verbose=0)).shape[-1] > 1
    model = main_output_model(full)
    proto, _ = convert.to_onnx(model, 3, 32)
    prob = run_onnx(proto, x)
    assert prob.shape == (1, 32, 32, 1)
    np.testing.assert_allclose(prob, model.predict(x, verbose=0), atol=1e-5)
