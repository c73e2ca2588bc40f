"""Model formats are told from the artifact, never from a name."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jupyter_mlk.errors import ServingError
from jupyter_mlk.serving.formats import load_model, sniff_file
from tests.serving.conftest import iris_model

X = np.array([[5.0, 3.4, 1.5, 0.2], [6.9, 3.1, 5.6, 2.2]])


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3)])
def test_sklearn_joblib_is_detected_from_its_bytes_under_any_name(
    tmp_path: Path, compress: object
) -> None:
    import joblib

    path = tmp_path / "weights.bin"  # a name that says nothing
    joblib.dump(iris_model(), path, compress=compress)
    assert sniff_file(path).container == "pickle"
    model = load_model(path)
    assert model.format == "sklearn" and model.n_features == 4
    assert model.predict(X).tolist() == [0, 2]


def test_a_plain_pickle_loads(tmp_path: Path) -> None:
    path = tmp_path / "model"
    path.write_bytes(pickle.dumps(iris_model()))
    assert sniff_file(path).format == "sklearn"
    assert load_model(path).format == "sklearn"


@pytest.mark.parametrize("suffix", [".json", ".ubj"])
def test_xgboost_files_load_as_classifiers(tmp_path: Path, suffix: str) -> None:
    xgboost = pytest.importorskip("xgboost")
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    clf = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(x, y)
    saved = tmp_path / f"m{suffix}"
    clf.save_model(str(saved))
    path = tmp_path / "model.data"
    path.write_bytes(saved.read_bytes())
    assert sniff_file(path).format == "xgboost"
    model = load_model(path)
    assert model.format == "xgboost" and model.n_features == 4
    assert model.predict(X).tolist() == [0, 2]


def test_lightgbm_text_model_loads(tmp_path: Path) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    clf = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, y)
    path = tmp_path / "model.bst"
    clf.booster_.save_model(str(path))
    assert sniff_file(path).format == "lightgbm"
    model = load_model(path)
    assert model.format == "lightgbm" and model.n_features == 4
    assert model.predict(X).shape == (2, 3)  # a Booster gives class probabilities


def test_a_torch_archive_is_detected_without_torch(tmp_path: Path) -> None:
    path = tmp_path / "net"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("net/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("net/version", b"3\n")
    assert sniff_file(path).format == "pytorch"
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ServingError, match="pip install torch"):
            load_model(path)


def test_torch_module_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is a large install; not in the test env")
    net = torch.nn.Linear(4, 3)
    path = tmp_path / "net.pt"
    torch.save(net, path)
    model = load_model(path)
    assert model.format == "pytorch"
    assert model.predict(X).shape == (2, 3)


def test_unknown_bytes_and_non_models_are_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"hello, not a model")
    with pytest.raises(ServingError, match=r"cannot tell the model format.*joblib\.dump"):
        load_model(path)
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ServingError, match=r"builtins\.dict is not a model"):
        load_model(path)
