"""Fixtures of the training tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def eager_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras runs this test's training steps eagerly (``run_eagerly=True`` at every compile).

    For tests of what a run writes, stops and resumes (checkpoints, history, state, optimizer
    steps), which graph mode does not change: tracing a tiny model's train, test and predict
    functions is most of a 2-epoch run (7.3 s of CPU in graph mode, 2.7 s eager, measured here).
    Graph-mode runs of the same command stay in test_train.py's ``trained`` run,
    test_train_instance.py's runs and every run in a child process. (Eager does not pay for
    those instance runs: their many 64-pixel tiles make more steps than tracing costs.)
    """
    import keras

    compile_ = keras.Model.compile

    def compile_eagerly(self, *args, **kwargs):
        return compile_(self, *args, **{**kwargs, "run_eagerly": True})

    monkeypatch.setattr(keras.Model, "compile", compile_eagerly)
