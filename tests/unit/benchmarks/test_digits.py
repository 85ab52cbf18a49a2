"""The digits models (`mlc.benchmarks.digits`): the split, short numpy training that matches
onnxruntime on the exported models, determinism, `with_batch`, the cache and the command
line (mlc against onnxruntime). The full training runs (and their accuracy targets) are
the benchmark's: here each model trains for one to three epochs."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("onnxruntime")

from mlc.benchmarks import digits  # noqa: E402
from mlc.benchmarks.digits import (  # noqa: E402
    DigitsSplit,
    accuracy,
    flatten,
    load_digits_split,
    numpy_logits,
    ort_runner,
    train_cnn,
    train_mlp,
    with_batch,
)

#: short training runs: enough for well above chance (10%) in about a second
EPOCHS = {"mlp": 3, "cnn": 2}


@pytest.fixture(scope="module")
def split() -> DigitsSplit:
    return load_digits_split()


@pytest.fixture(scope="module")
def models(split: DigitsSplit) -> dict[str, onnx.ModelProto]:
    return {
        "mlp": train_mlp(split, epochs=EPOCHS["mlp"]),
        "cnn": train_cnn(split, epochs=EPOCHS["cnn"]),
    }


def _x(kind: str, split: DigitsSplit) -> np.ndarray:
    return flatten(split.x_test) if kind == "mlp" else split.x_test


def test_split(split: DigitsSplit) -> None:
    assert split.x_train.shape == (1347, 1, 8, 8) and split.x_test.shape == (450, 1, 8, 8)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.x_train.min() == 0 and split.x_train.max() == 1
    assert np.bincount(split.y_test).min() >= 43  # stratified: ~45 of each digit
    again = load_digits_split()
    np.testing.assert_array_equal(again.x_test, split.x_test)
    np.testing.assert_array_equal(again.y_train, split.y_train)
    flat = split.flat()
    assert flat.x_train.shape == (1347, 64) and flat.x_test.shape == (450, 64)
    np.testing.assert_array_equal(flat.x_test[:, 9], split.x_test[:, 0, 1, 1])


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_exported_model_matches_the_numpy_forward_pass(
    kind: str, split: DigitsSplit, models: dict[str, onnx.ModelProto]
) -> None:
    model = models[kind]
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    (x_info,), (y_info,) = model.graph.input, model.graph.output
    assert (x_info.name, y_info.name) == ("x", "logits")
    assert x_info.type.tensor_type.shape.dim[0].dim_param == "N"
    assert y_info.type.tensor_type.shape.dim[0].dim_param == "N"
    ops = [n.op_type for n in model.graph.node]
    if kind == "mlp":
        assert ops == ["Gemm", "Relu", "Gemm", "Relu", "Gemm"]
    else:
        assert ops.count("Conv") == 3 and ops.count("MaxPool") == 1 and ops[-1] == "Gemm"
    x = _x(kind, split)
    ort = ort_runner(model)
    ref = ort(x)
    assert ref.shape == (450, 10) and ref.dtype == np.float32
    np.testing.assert_allclose(numpy_logits(model, x), ref, rtol=0, atol=1e-4)
    # clearly above chance after a second of training (the full runs reach 98%)
    assert accuracy(ort, split, flat=kind == "mlp") > 0.85


def test_accuracy_in_fixed_batches(split: DigitsSplit, models: dict[str, onnx.ModelProto]) -> None:
    """A fixed-batch runner is fed exactly `batch` rows per call (the last padded); a
    runner returning a list of outputs (as mlc's compiled models do) works too."""
    model = models["cnn"]
    ort = ort_runner(model)
    shapes: set[tuple[int, ...]] = set()

    def fixed(x: np.ndarray) -> list[np.ndarray]:
        shapes.add(x.shape)
        return [ort(x)]

    whole = accuracy(ort, split)
    assert accuracy(fixed, split, batch=64) == whole
    assert shapes == {(64, 1, 8, 8)}  # 450 = 7 * 64 + 2: the last batch padded
    with pytest.raises(ValueError, match="logits of shape"):
        accuracy(lambda x: ort(x)[:, :5], split)


def test_training_is_deterministic(split: DigitsSplit) -> None:
    small = DigitsSplit(split.x_train[:256], split.y_train[:256], split.x_test, split.y_test)
    for train in (train_mlp, train_cnn):
        a, b = train(small, seed=0, epochs=1), train(small, seed=0, epochs=1)
        assert a.SerializeToString() == b.SerializeToString()
        c = train(small, seed=1, epochs=1)
        assert c.graph.initializer[0].raw_data != a.graph.initializer[0].raw_data


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_with_batch_fixes_the_batch_dimension(
    kind: str, split: DigitsSplit, models: dict[str, onnx.ModelProto]
) -> None:
    model = models[kind]
    for n in (1, 64):
        fixed = with_batch(model, n)
        onnx.checker.check_model(fixed, full_check=True)
        (x_info,), (y_info,) = fixed.graph.input, fixed.graph.output
        x_dims = [d.dim_value for d in x_info.type.tensor_type.shape.dim]
        assert x_dims == ([n, 64] if kind == "mlp" else [n, 1, 8, 8])
        assert [d.dim_value for d in y_info.type.tensor_type.shape.dim] == [n, 10]
        assert not x_info.type.tensor_type.shape.dim[0].dim_param
        x = _x(kind, split)[:n]
        np.testing.assert_allclose(ort_runner(fixed)(x), ort_runner(model)(x), atol=1e-6)
    # the original keeps its symbolic batch
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    with pytest.raises(ValueError, match="positive"):
        with_batch(model, 0)


def _fake_training(
    monkeypatch: pytest.MonkeyPatch, models: dict[str, onnx.ModelProto]
) -> list[str]:
    """Replace the full training runs by the short ones; returns the kinds trained."""
    trained: list[str] = []

    def train(kind: str, split: DigitsSplit, **_: object) -> onnx.ModelProto:
        trained.append(kind)
        return models[kind]

    monkeypatch.setattr(digits, "train", train)
    return trained


def test_model_path_trains_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: dict[str, onnx.ModelProto]
) -> None:
    trained = _fake_training(monkeypatch, models)
    path = digits.model_path("mlp", tmp_path)
    assert re.fullmatch(r"digits_mlp_[0-9a-f]{16}\.onnx", path.name) and path.parent == tmp_path
    assert digits.config_hash("mlp") in path.name
    assert onnx.load(str(path)).SerializeToString() == models["mlp"].SerializeToString()
    assert digits.model_path("mlp", tmp_path) == path and trained == ["mlp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left
    path.write_bytes(b"truncated")  # an unreadable entry is trained again
    assert digits.model_path("mlp", tmp_path) == path and trained == ["mlp", "mlp"]
    assert digits.model_path("mlp", tmp_path, retrain=True) == path and len(trained) == 3
    with pytest.raises(ValueError, match="unknown model kind"):
        digits.model_path("rnn", tmp_path)
    # the default directory: digits/ in $MLC_CACHE_DIR
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path / "cache"))
    assert digits.model_path("cnn").parent == tmp_path / "cache" / "digits"


def test_config_hash_names_the_hyperparameters(monkeypatch: pytest.MonkeyPatch) -> None:
    mlp, cnn = digits.config_hash("mlp"), digits.config_hash("cnn")
    assert mlp != cnn and digits.config_hash("mlp") == mlp
    assert digits.config_hash("mlp", seed=1) != mlp
    longer = replace(digits.CONFIGS["mlp"], epochs=digits.CONFIGS["mlp"].epochs + 1)
    monkeypatch.setattr(digits, "CONFIGS", digits.CONFIGS | {"mlp": longer})
    assert digits.config_hash("mlp") != mlp and digits.config_hash("cnn") == cnn


def test_command_line_compiles_with_mlc(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    models: dict[str, onnx.ModelProto],
) -> None:
    """`python -m mlc.benchmarks.digits -o DIR`: both models saved in DIR, their accuracy
    with onnxruntime and with mlc at a fixed batch (predictions equal, else exit 1)."""
    _fake_training(monkeypatch, models)
    assert digits.main(["-o", str(tmp_path), "--batches", "5"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name.split("_")[1] for p in tmp_path.glob("*.onnx")) == ["cnn", "mlp"]
    assert out.count("onnxruntime (1 thread): test accuracy") == 2
    assert len(re.findall(r"mlc batch 5: test accuracy 0\.\d+, .* predictions equal", out)) == 2
