"""Model formats: told from the artifact's bytes or classes, loaded, and wrapped for prediction.

The format is never guessed from a file or variable name. A file is sniffed by its first
bytes (pickle and joblib streams, XGBoost JSON/UBJSON, LightGBM text, PyTorch archives);
for pickles the classes named inside the stream tell the library, and once loaded the
object's classes (its MRO) decide. Loading a pickle runs code: deploy only models you trust.
"""

from __future__ import annotations

import bz2
import io
import logging
import lzma
import pickletools
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import ServingError

log = logging.getLogger(__name__)

FORMATS = ("sklearn", "xgboost", "lightgbm", "pytorch")
# Top-level module of a class -> model format. The first class of the MRO that maps wins,
# so an XGBClassifier (which also derives from scikit-learn's mixins) is XGBoost.
_MODULE_FORMATS = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torch": "pytorch",
}
_PACKAGES = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "pytorch": "torch",
}
_SNIFF_BYTES = 256 * 1024


@dataclass(frozen=True)
class Sniffed:
    """What the first bytes of a model file say.

    Attributes:
        container: how the file is encoded: ``pickle`` (plain or joblib), ``xgboost``,
            ``lightgbm``, ``torch`` (``torch.save``) or ``torchscript``.
        format: the model format when the bytes tell it, else None (a compressed joblib
            whose stream could not be read far enough).
    """

    container: str
    format: str | None


def format_of_object(obj: Any) -> str | None:
    """The model format of a Python object, from its classes; None for a non-model."""
    for cls in type(obj).__mro__:
        root = cls.__module__.partition(".")[0]
        fmt = _MODULE_FORMATS.get(root)
        if fmt is not None and _is_model_class(cls):
            return fmt
    return None


_DATA_CLASSES = ("DMatrix", "QuantileDMatrix", "Dataset", "Tensor", "Parameter")


def _is_model_class(cls: type) -> bool:
    # Data containers of these libraries are not models.
    return cls.__name__ not in _DATA_CLASSES


def format_of_class_name(qualname: str) -> str | None:
    """The format a qualified class name suggests (from a bundle manifest), or None."""
    root = qualname.partition(".")[0]
    if root in _MODULE_FORMATS and qualname.rsplit(".", 1)[-1] not in _DATA_CLASSES:
        return _MODULE_FORMATS[root]
    return None


# ---- sniffing -----------------------------------------------------------------------------
def sniff_file(path: Path) -> Sniffed:
    """Tell a model file's encoding and, where the bytes say it, its format.

    Raises:
        ServingError: the file is not a model in any supported encoding.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise ServingError(f"cannot read model file {path}: {exc.strerror}") from exc
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path)
    if head.startswith(b"tree\n") and b"version=v" in head[:64]:
        return Sniffed("lightgbm", "lightgbm")
    if head.startswith(b"binf") or (head.startswith(b"{") and b"learner" in head[:512]):
        return Sniffed("xgboost", "xgboost")
    stream = _decompressed_head(head)
    if stream is not None and stream[:1] == b"\x80":
        return Sniffed("pickle", _format_from_pickle(stream))
    shown = head[:8].hex(" ")
    raise ServingError(
        f"cannot tell the model format of {path} (first bytes {shown}): it is not a pickle "
        "or joblib file, an XGBoost model (.json/.ubj), a LightGBM text model or a PyTorch "
        "archive. Save scikit-learn models with joblib.dump, XGBoost and LightGBM models "
        "with save_model, PyTorch modules with torch.save or torch.jit.save."
    )


def _sniff_zip(path: Path) -> Sniffed:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise ServingError(f"{path} looks like a zip archive but cannot be read: {exc}") from exc
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return Sniffed("torchscript", "pytorch")
    if any(n.endswith("/data.pkl") for n in names):
        return Sniffed("torch", "pytorch")
    raise ServingError(
        f"{path} is a zip archive but not a PyTorch model (no data.pkl inside); "
        "deploy the model file itself, not an archive of it"
    )


def _decompressed_head(head: bytes) -> bytes | None:
    """The start of the pickle stream: as is, or through joblib's compressors."""
    if head[:1] == b"\x80":
        return head
    decompressors: list[tuple[bytes, Any]] = [
        (b"\x1f\x8b", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS)),
        (b"BZh", bz2.BZ2Decompressor),
        (b"\xfd7zXZ", lzma.LZMADecompressor),
        (b"\x78", zlib.decompressobj),
    ]
    for magic, make in decompressors:
        if head.startswith(magic):
            try:
                out: bytes = make().decompress(head)
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
                return None
            return out
    return None


def _format_from_pickle(stream: bytes) -> str | None:
    """The format named by the first known library class in a (possibly cut) pickle."""
    for module in _pickle_modules(stream):
        fmt = _MODULE_FORMATS.get(module.partition(".")[0])
        if fmt is not None:
            return fmt
    return None


def _pickle_modules(stream: bytes) -> Iterable[str]:
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(stream)):
            if opcode.name == "GLOBAL" and isinstance(arg, str):
                yield arg.split(" ", 1)[0]
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                yield strings[-2]
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # a cut-off stream, or raw array bytes inside a joblib file
        return


# ---- loading ------------------------------------------------------------------------------
def _require(fmt: str) -> Any:
    import importlib

    module = {"sklearn": "sklearn", "pytorch": "torch"}.get(fmt, fmt)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ServingError(
            f"the model is a {fmt} model but {module} is not installed here: "
            f"pip install {_PACKAGES[fmt]}"
        ) from exc


def load_file(path: Path) -> Any:
    """Load a model file into its Python object.

    Raises:
        ServingError: the file is not a model, or its library is missing or refuses it.
    """
    sniffed = sniff_file(path)
    if sniffed.format is not None:
        _require(sniffed.format)
    try:
        if sniffed.container == "pickle":
            import joblib

            return joblib.load(path)
        if sniffed.container == "xgboost":
            return _load_xgboost(path)
        if sniffed.container == "lightgbm":
            import lightgbm

            return lightgbm.Booster(model_file=str(path))
        import torch

        if sniffed.container == "torchscript":
            return torch.jit.load(str(path), map_location="cpu")
        return torch.load(path, map_location="cpu", weights_only=False)
    except ServingError:
        raise
    except ModuleNotFoundError as exc:
        raise ServingError(
            f"model file {path} needs the module {exc.name!r}, which is not installed here"
        ) from exc
    except Exception as exc:
        raise ServingError(
            f"model file {path} cannot be loaded ({type(exc).__name__}: {exc}); check that "
            "it was saved by the same library version that is installed here"
        ) from exc


def _load_xgboost(path: Path) -> Any:
    import tempfile

    import xgboost

    # XGBoost picks the encoding from the file name's suffix: give it the one the bytes say.
    with open(path, "rb") as fh:
        head = fh.read(2)
    suffix = ".json" if head == b'{"' else ".bin" if head == b"bi" else ".ubj"
    with tempfile.TemporaryDirectory(prefix="mlk-xgb-") as tmp:
        named = Path(tmp) / f"model{suffix}"
        named.symlink_to(path.resolve())
        return _xgboost_model(xgboost, named)


def _xgboost_model(xgboost: Any, path: Path) -> Any:
    import json

    booster = xgboost.Booster(model_file=str(path))
    # save_model on XGBClassifier/XGBRegressor records the wrapper type: restore it, so
    # predictions are labels (classifier) rather than raw probabilities.
    kind = None
    meta = booster.attr("scikit_learn")
    if meta:
        kind = json.loads(meta).get("_estimator_type")
    cls = {"classifier": xgboost.XGBClassifier, "regressor": xgboost.XGBRegressor}.get(kind or "")
    if cls is None:
        return booster
    model = cls()
    model.load_model(str(path))
    return model


# ---- the served model ---------------------------------------------------------------------
class ServedModel:
    """A loaded model with what the protocol layer needs to shape its input.

    Attributes:
        format: one of :data:`FORMATS`.
        obj: the library's model object.
        feature_names: column names the model was fitted with (DataFrame-trained), or None.
        n_features: number of input features when the model knows it, else None.
        class_name: qualified class name, for metadata and messages.
    """

    def __init__(self, obj: Any, fmt: str | None = None) -> None:
        found = fmt or format_of_object(obj)
        if found is None:
            kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
            raise ServingError(
                f"a {kind} is not a model jupyter_mlk can serve; deploy a scikit-learn, "
                "XGBoost, LightGBM or PyTorch model"
            )
        self.format = found
        self.obj = obj
        self.class_name = f"{type(obj).__module__}.{type(obj).__qualname__}"
        self.feature_names, self.n_features = _signature(obj, found)
        if found == "sklearn" and not hasattr(obj, "predict"):
            raise ServingError(
                f"the scikit-learn object {self.class_name} has no predict method (a "
                "transformer?); deploy the fitted estimator or pipeline that predicts"
            )

    def predict(self, inputs: Any) -> Any:
        """Predictions for a 2-D array or DataFrame, as a numpy array (rows first)."""
        import numpy as np

        if self.format == "pytorch":
            return self._predict_torch(inputs)
        if self.format == "xgboost" and type(self.obj).__name__ == "Booster":
            import xgboost

            return np.asarray(self.obj.predict(xgboost.DMatrix(inputs)))
        return np.asarray(self.obj.predict(inputs))

    def _predict_torch(self, inputs: Any) -> Any:
        import numpy as np
        import torch

        array = np.asarray(inputs, dtype=np.float32)
        self.obj.eval()
        with torch.no_grad():
            out = self.obj(torch.from_numpy(array))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        """Metadata for the protocol layer: format, class and features."""
        return {
            "format": self.format,
            "class": self.class_name,
            "feature_names": self.feature_names,
            "n_features": self.n_features,
        }


def _signature(obj: Any, fmt: str) -> tuple[list[str] | None, int | None]:
    names: Any = None
    count: Any = None
    if fmt == "lightgbm" and type(obj).__name__ == "Booster":
        names, count = obj.feature_name(), obj.num_feature()
        if all(n == f"Column_{i}" for i, n in enumerate(names)):
            names = None  # LightGBM's own placeholders: trained on a plain array
    elif fmt == "xgboost" and type(obj).__name__ == "Booster":
        names, count = obj.feature_names, obj.num_features()
    else:
        try:
            names = getattr(obj, "feature_names_in_", None)
            count = getattr(obj, "n_features_in_", None)
        except Exception:  # a property that raises on an unfitted or odd estimator
            names, count = None, None
    listed = [str(n) for n in names] if names is not None else None
    return listed, (int(count) if count is not None else None)


def load_model(path: Path, variable: str | None = None) -> ServedModel:
    """Load a model from a file, or the value ``variable`` of a run's value bundle.

    Raises:
        ServingError: the artifact is missing, is not a model, or cannot be loaded.
    """
    if path.is_dir():
        from jupyter_mlk.pipeline.values import read_bundle

        if variable is None:
            raise ServingError(f"{path} is a value bundle: name the variable to serve")
        try:
            values = read_bundle(path)
        except ModuleNotFoundError as exc:
            raise ServingError(
                f"the value {variable!r} needs the module {exc.name!r}, which is not installed"
            ) from exc
        if variable not in values:
            raise ServingError(f"value bundle {path} has no variable {variable!r}")
        return ServedModel(values[variable])
    obj = load_file(path)
    fmt = format_of_object(obj) or _non_pickle_format(path)
    return ServedModel(obj, fmt)


def _non_pickle_format(path: Path) -> str | None:
    sniffed = sniff_file(path)
    return sniffed.format if sniffed.container != "pickle" else None
