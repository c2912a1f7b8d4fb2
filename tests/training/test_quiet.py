"""segcore.training.quiet: `tensorflow_left_unloaded` and the Keras internals it relies on."""

from __future__ import annotations

import sys

import pytest

from segcore.training.quiet import _lazy_tensorflow, tensorflow_left_unloaded


def test_this_keras_still_has_the_lazy_tensorflow_module_the_block_answers_for():
    """Keras has no public switch; a release without its lazy module's cached ``_available``
    makes the block do nothing (JAX runs load TensorFlow again): this test names the change."""
    assert _lazy_tensorflow() is not None


def test_under_another_backend_keras_hears_tensorflow_is_unavailable_within_the_block_only(
    monkeypatch: pytest.MonkeyPatch,
):
    import keras

    lazy = _lazy_tensorflow()
    before = lazy._available
    with tensorflow_left_unloaded():  # this process runs TensorFlow: nothing changes
        assert lazy._available == before
    with monkeypatch.context() as mp:  # as a JAX process that has not loaded TensorFlow
        mp.setattr(keras.backend, "backend", lambda: "jax")
        mp.delitem(sys.modules, "tensorflow", raising=False)
        with tensorflow_left_unloaded():
            assert lazy.available is False  # asked, without an import
        assert lazy._available == before
