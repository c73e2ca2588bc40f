"""KServe V1 and Open Inference Protocol (V2) bodies: parsed into model inputs, and back.

Pure functions: no HTTP stack. Every malformed body raises :class:`RequestError` with a
400 status and a message saying what was wrong and which shape is expected; the server
turns it into ``{"error": "..."}``. Responses hold only plain JSON types.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

from jupyter_mlk.errors import ServingError
from jupyter_mlk.serving.formats import ServedModel

V2_DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)
_V1_SHAPE = '{"instances": [[f1, f2, ...], ...]} or {"instances": [{"name": value, ...}, ...]}'
_V2_SHAPE = (
    '{"inputs": [{"name": "input-0", "shape": [rows, features], "datatype": "FP32", '
    '"data": [...]}]}'
)


class RequestError(ServingError):
    """A request the caller can fix (4xx): a bad body or an unknown model.

    Attributes:
        status: the HTTP status to answer with.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ModelInput:
    """Rows ready for ``model.predict``, and the key of the batches it may join.

    Attributes:
        rows: number of rows.
        data: a 2-D numpy array, a pandas DataFrame, or an N-D array (PyTorch).
        key: inputs with equal keys can be concatenated into one predict call.
    """

    rows: int
    data: Any
    key: tuple[Any, ...]


# ---- bodies -------------------------------------------------------------------------------
def parse_json(body: bytes, expected: str = _V1_SHAPE) -> Any:
    """Decode a request body as JSON.

    Raises:
        RequestError: the body is empty, not UTF-8, or not JSON.
    """
    if not body.strip():
        raise RequestError(f"the request body is empty; send JSON such as {expected}")
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise RequestError(f"the request body is not UTF-8 JSON ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"the request body is not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}); send JSON such as {expected}"
        ) from None


def v1_input(payload: Any, model: ServedModel, name: str) -> ModelInput:
    """Model input from a V1 body: ``instances`` or ``inputs``.

    Raises:
        RequestError: the body is not a V1 request the model can take.
    """
    if not isinstance(payload, dict):
        raise RequestError(
            f"the body must be a JSON object, not {_json_kind(payload)}; send {_V1_SHAPE}"
        )
    keys = [k for k in ("instances", "inputs") if k in payload]
    if len(keys) != 1:
        found = "both" if len(keys) == 2 else "neither"
        raise RequestError(
            f"a V1 predict body needs exactly one of 'instances' or 'inputs' ({found} "
            f"given); send {_V1_SHAPE}"
        )
    return instances_input(payload[keys[0]], model, name, keys[0])


def instances_input(value: Any, model: ServedModel, name: str, field: str) -> ModelInput:
    """Model input from a list of rows, a list of records, or columnar records."""
    if isinstance(value, dict):
        return _columns_input(value, model, name, f"'{field}'")
    if not isinstance(value, list):
        raise RequestError(
            f"'{field}' must be a list of rows, not {_json_kind(value)}; send {_V1_SHAPE}"
        )
    if not value:
        raise RequestError(f"'{field}' is empty; send at least one row: {_V1_SHAPE}")
    first = value[0]
    if isinstance(first, list):
        return rows_input(value, model, name, f"'{field}'")
    if isinstance(first, dict):
        return records_input(value, model, name, f"'{field}'")
    if all(_is_scalar(v) for v in value):
        example = json.dumps([value[:4] + (["..."] if len(value) > 4 else [])])
        raise RequestError(
            f"'{field}' is a flat list of {len(value)} values, but it must be a list of rows; "
            f'wrap a single row in another list: {{"{field}": {example}}}'
        )
    raise RequestError(
        f"'{field}' starts with {_json_kind(first)}; it must be a list of rows (lists) or of "
        f"records (objects): {_V1_SHAPE}"
    )


def rows_input(rows: list[Any], model: ServedModel, name: str, where: str) -> ModelInput:
    """Model input from positional rows (lists of values in training order)."""
    import numpy as np

    width = len(rows[0]) if isinstance(rows[0], list) else -1
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise RequestError(
                f"{where}: row {i} is {_json_kind(row)}, but row 0 is a list; every row "
                "must be a list of values"
            )
        if len(row) != width:
            raise RequestError(
                f"{where}: row {i} has {len(row)} values but row 0 has {width}; every row "
                "must have the same number of features"
            )
    _check_width(width, model, name, where)
    if width == 0:
        raise RequestError(f"{where}: rows are empty; each row needs the model's features")
    has_text = False
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if isinstance(v, str):
                has_text = True
            elif not (v is None or isinstance(v, (int, float))):
                raise RequestError(
                    f"{where}: row {i}, value {j} is {_json_kind(v)}; each value must be a "
                    "number, a string, true/false or null"
                )
    if has_text and model.feature_names is not None:
        raise RequestError(
            f"{where}: positional rows hold strings, but model {name!r} was trained on named "
            f"columns ({', '.join(model.feature_names)}); send records instead: "
            f'{{"instances": [{{"{model.feature_names[0]}": ..., ...}}]}}'
        )
    if has_text:
        array = np.array(rows, dtype=object)
        key: tuple[Any, ...] = ("object", width)
    else:
        array = np.array(rows, dtype=np.float64)  # null becomes NaN
        key = ("float", width)
    if model.feature_names is not None:
        import pandas as pd

        return ModelInput(len(rows), pd.DataFrame(array, columns=model.feature_names), key)
    return ModelInput(len(rows), array, key)


def _check_width(width: int, model: ServedModel, name: str, where: str) -> None:
    expected = model.n_features
    if expected is not None and width != expected:
        names = f" ({', '.join(model.feature_names)})" if model.feature_names else ""
        raise RequestError(
            f"{where}: rows have {width} features but model {name!r} expects "
            f"{expected}{names}; send rows of {expected} values"
        )


def records_input(records: list[Any], model: ServedModel, name: str, where: str) -> ModelInput:
    """Model input from records (objects keyed by feature name)."""
    columns = _named_columns(model, name, where)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise RequestError(
                f"{where}: item {i} is {_json_kind(record)}, but item 0 is an object; send "
                "every row as a record"
            )
        _check_fields(record.keys(), columns, f"{where}: record {i}", name)
        for key, v in record.items():
            if not _is_scalar(v):
                raise RequestError(
                    f"{where}: record {i}, field {key!r} is {_json_kind(v)}; each value must "
                    "be a number, a string, true/false or null"
                )
    import pandas as pd

    frame = pd.DataFrame.from_records(records, columns=columns)
    return ModelInput(len(records), frame, _frame_key(frame))


def _columns_input(value: dict[str, Any], model: ServedModel, name: str, where: str) -> ModelInput:
    """Model input from columnar records: {name: [values]} or {name: value} for one row."""
    columns = _named_columns(model, name, where)
    _check_fields(value.keys(), columns, where, name)
    lists = [isinstance(v, list) for v in value.values()]
    if all(lists):
        lengths = {len(v) for v in value.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise RequestError(
                f"{where}: columns must be non-empty lists of one length; got lengths "
                f"{sorted(lengths)}"
            )
        data = value
    elif not any(lists):
        data = {k: [v] for k, v in value.items()}
    else:
        raise RequestError(
            f"{where}: mix of lists and single values; send every column as a list of values "
            "(one per row), or every field as one value (a single record)"
        )
    for key, column in data.items():
        for v in column:
            if not _is_scalar(v):
                raise RequestError(
                    f"{where}: column {key!r} holds {_json_kind(v)}; values must be numbers, "
                    "strings, true/false or null"
                )
    import pandas as pd

    frame = pd.DataFrame({c: data[c] for c in columns})
    return ModelInput(len(frame), frame, _frame_key(frame))


def _named_columns(model: ServedModel, name: str, where: str) -> list[str]:
    if model.feature_names is None:
        count = f"{model.n_features} " if model.n_features else ""
        raise RequestError(
            f"{where}: records name their fields, but model {name!r} was trained without "
            f"column names; send rows as lists of {count}values in training order: "
            f'{{"instances": [[f1, f2, ...]]}}'
        )
    return list(model.feature_names)


def _check_fields(keys: Any, columns: list[str], where: str, name: str) -> None:
    present = set(keys)
    missing = [c for c in columns if c not in present]
    unknown = sorted(str(k) for k in present - set(columns))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"lacks {', '.join(map(repr, missing))}")
        if unknown:
            parts.append(f"has unknown {', '.join(map(repr, unknown))}")
        raise RequestError(
            f"{where} {' and '.join(parts)}; model {name!r} expects the fields "
            f"{', '.join(columns)}"
        )


def _frame_key(frame: Any) -> tuple[Any, ...]:
    return ("frame", tuple(frame.columns), tuple(str(t) for t in frame.dtypes))


# ---- V2 -----------------------------------------------------------------------------------
@dataclass
class Tensor:
    """One V2 input tensor, its data flattened row-major."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


def v2_tensors(payload: Any) -> list[Tensor]:
    """The input tensors of a V2 infer body, checked against their shapes and datatypes.

    Raises:
        RequestError: the body is not a valid V2 inference request.
    """
    if not isinstance(payload, dict):
        raise RequestError(
            f"the body must be a JSON object, not {_json_kind(payload)}: {_V2_SHAPE}"
        )
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        got = "missing" if inputs is None else f"{_json_kind(inputs)}"
        raise RequestError(f"'inputs' must be a non-empty list of tensors ({got}): {_V2_SHAPE}")
    return [_tensor(t, i) for i, t in enumerate(inputs)]


def _tensor(t: Any, index: int) -> Tensor:
    if not isinstance(t, dict):
        raise RequestError(f"inputs[{index}] is {_json_kind(t)}; each input is {_V2_SHAPE}")
    label = f"input {t.get('name')!r}" if isinstance(t.get("name"), str) else f"inputs[{index}]"
    for key in ("name", "shape", "datatype", "data"):
        if key not in t:
            raise RequestError(f"{label} has no {key!r}; each input is {_V2_SHAPE}")
    name, shape, datatype, data = t["name"], t["shape"], t["datatype"], t["data"]
    if not isinstance(name, str) or not name:
        raise RequestError(f"inputs[{index}]: 'name' must be a non-empty string")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise RequestError(f"{label}: 'shape' must be a list of non-negative integers")
    if datatype not in V2_DATATYPES:
        raise RequestError(
            f"{label}: datatype {datatype!r} is not one of {', '.join(V2_DATATYPES)}"
        )
    flat = _flatten(data, label)
    needed = math.prod(shape)
    if needed != len(flat):
        raise RequestError(
            f"{label}: shape {shape} needs {needed} values but data has {len(flat)}; "
            "data is row-major (flat, or nested to match the shape)"
        )
    _check_datatype(flat, datatype, label)
    return Tensor(name, shape, datatype, flat)


def _flatten(data: Any, label: str) -> list[Any]:
    if not isinstance(data, list):
        if _is_scalar(data) and data is not None:
            return [data]
        raise RequestError(f"{label}: 'data' must be a list, not {_json_kind(data)}")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            if isinstance(item, dict):
                raise RequestError(f"{label}: 'data' holds an object; it must hold values")
            flat.append(item)
        else:
            stack.pop()
    return flat


def _check_datatype(flat: list[Any], datatype: str, label: str) -> None:
    if datatype == "BYTES":
        ok = all(isinstance(v, str) for v in flat)
        want = "strings"
    elif datatype == "BOOL":
        ok = all(isinstance(v, bool) for v in flat)
        want = "true/false"
    elif datatype.startswith(("INT", "UINT")):
        ok = all(
            isinstance(v, int) or (isinstance(v, float) and v.is_integer()) for v in flat
        ) and not any(isinstance(v, bool) for v in flat)
        if ok and datatype.startswith("UINT"):
            ok = all(v >= 0 for v in flat)
        want = "integers" + (" >= 0" if datatype.startswith("UINT") else "")
    else:
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat)
        want = "numbers"
    if not ok:
        bad = next((i for i, v in enumerate(flat) if not _fits(v, datatype)), 0)
        raise RequestError(
            f"{label} is {datatype} but value {bad} ({json.dumps(flat[bad])}) is not; "
            f"{datatype} data must be {want}"
        )


def _fits(v: Any, datatype: str) -> bool:
    if datatype == "BYTES":
        return isinstance(v, str)
    if datatype == "BOOL":
        return isinstance(v, bool)
    if isinstance(v, bool):
        return False
    if datatype.startswith(("INT", "UINT")):
        if not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
            return False
        return not datatype.startswith("UINT") or v >= 0
    return isinstance(v, (int, float))


def v2_input(tensors: list[Tensor], model: ServedModel, name: str) -> ModelInput:
    """Model input from V2 tensors: one [rows, features] tensor, or one tensor per feature.

    Raises:
        RequestError: the tensors do not fit the model.
    """
    names = model.feature_names or []
    if len(tensors) > 1 or (names and tensors[0].name in names and len(names) == 1):
        return _named_tensors(tensors, model, name)
    t = tensors[0]
    if model.format == "pytorch" and len(t.shape) >= 2:
        import numpy as np

        array = np.asarray(t.data, dtype=np.float32).reshape(t.shape)
        return ModelInput(t.shape[0], array, ("tensor", tuple(t.shape[1:])))
    if len(t.shape) != 2:
        width = model.n_features or "features"
        raise RequestError(
            f"input {t.name!r} has shape {t.shape}; a single input must be 2-D "
            f"[rows, features], e.g. shape [1, {width}] for one row"
        )
    rows, width = t.shape
    if rows == 0:
        raise RequestError(f"input {t.name!r} has no rows (shape {t.shape})")
    nested = [t.data[i * width : (i + 1) * width] for i in range(rows)]
    return rows_input(nested, model, name, f"input {t.name!r}")


def _named_tensors(tensors: list[Tensor], model: ServedModel, name: str) -> ModelInput:
    columns = _named_columns(model, name, "named inputs")
    given = [t.name for t in tensors]
    if len(set(given)) != len(given):
        raise RequestError(f"input names repeat ({', '.join(given)}); each feature once")
    _check_fields(given, columns, "the request's inputs", name)
    lengths = set()
    for t in tensors:
        if len(t.shape) not in (1, 2) or (len(t.shape) == 2 and t.shape[1] != 1):
            raise RequestError(
                f"input {t.name!r} has shape {t.shape}; a named input is one column: "
                "shape [rows] or [rows, 1]"
            )
        lengths.add(t.shape[0])
    if len(lengths) != 1 or 0 in lengths:
        raise RequestError(
            f"named inputs must have the same number of rows (>0); got {sorted(lengths)}"
        )
    import pandas as pd

    by_name = {t.name: t.data for t in tensors}
    frame = pd.DataFrame({c: by_name[c] for c in columns})
    return ModelInput(len(frame), frame, _frame_key(frame))


# ---- responses ----------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Plain JSON types from numpy results: ints stay ints, NaN becomes null."""
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            if value.dtype.kind == "c":
                value = value.real
            if not np.isfinite(value).all():
                return _finite(value.tolist())
            return value.tolist()
        if value.dtype.kind == "O":
            return [jsonable(v) for v in value.tolist()]
        if value.dtype.kind == "S":
            return [jsonable(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def v1_response(predictions: Any) -> dict[str, Any]:
    """The V1 predict response body."""
    return {"predictions": jsonable(predictions)}


def v2_datatype(array: Any) -> str:
    """The V2 datatype of a numpy result."""
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'INT' if kind == 'i' else 'UINT'}{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    if (
        kind == "O"
        and array.size
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in array.flat)
    ):
        return "INT64" if all(isinstance(v, int) for v in array.flat) else "FP64"
    return "BYTES"


def v2_response(
    predictions: Any, model_name: str, version: str, request_id: str | None
) -> dict[str, Any]:
    """The V2 infer response body: one output tensor, data flat and row-major."""
    import numpy as np

    array = np.asarray(predictions)
    datatype = v2_datatype(array)
    data = jsonable(array.reshape(-1))
    if datatype == "BYTES":
        data = [v if isinstance(v, str) else json.dumps(v) for v in data]
    return {
        "model_name": model_name,
        "model_version": version,
        "id": request_id if request_id is not None else uuid.uuid4().hex,
        "parameters": {},
        "outputs": [
            {"name": "output-0", "shape": list(array.shape), "datatype": datatype, "data": data}
        ],
    }


def request_id(payload: Any) -> str | None:
    """The ``id`` of a V2 request, when it has a usable one."""
    rid = payload.get("id") if isinstance(payload, dict) else None
    return rid if isinstance(rid, str) else None


def dumps(body: Any) -> bytes:
    """UTF-8 JSON with non-ASCII text kept as is."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


# ---- helpers ------------------------------------------------------------------------------
def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__
