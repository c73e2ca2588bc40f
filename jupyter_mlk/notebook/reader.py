"""Load a notebook file of any nbformat version into one normalised form.

v3 is upgraded to v4; notebooks without cell ids (4.0-4.4) or with missing or duplicate ids
(4.5) get ids derived from the cell's position and source, so the same file always gives
the same ids. Stored outputs are dropped here, so they can never reach a pipeline.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_mlk.errors import NotebookError

_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@dataclass
class RawCell:
    """A cell as read from the file, before tags are interpreted."""

    index: int
    id: str
    cell_type: str
    source: str
    tags: tuple[str, ...]


@dataclass
class LoadedNotebook:
    """A normalised notebook plus what the reader had to say about it."""

    path: str
    cells: list[RawCell]
    kernel: str
    nbformat: str
    metadata: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "notebooks are UTF-8 JSON: save it again from Jupyter or convert it with iconv"
        ) from None


def _parse(path: Path, text: str) -> Any:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"{path}: not a notebook: invalid JSON at line {exc.lineno}, column {exc.colno} "
            f"({exc.msg})"
        ) from None
    if not isinstance(raw, dict) or ("cells" not in raw and "worksheets" not in raw):
        raise NotebookError(f"{path}: not a notebook: the JSON has no 'cells' list")
    major = raw.get("nbformat", 4)
    if major == 4 and isinstance(raw.get("cells"), list):
        # nbformat itself is only needed to upgrade older files: importing it pulls in
        # jsonschema's format checkers, which cost a second on every command.
        return _Notebook(
            cells=[c for c in raw["cells"] if isinstance(c, dict)],
            metadata=raw.get("metadata") or {},
        )
    import nbformat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            nb = nbformat.reads(json.dumps(raw), as_version=4)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise NotebookError(
                f"{path}: not a readable notebook (nbformat {major}): {exc}"
            ) from None
    return _Notebook(cells=[dict(c) for c in nb.cells], metadata=dict(nb.metadata))


@dataclass
class _Notebook:
    cells: list[dict[str, Any]]
    metadata: dict[str, Any]


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _derived_id(index: int, source: str, taken: set[str]) -> str:
    """An id made from the cell's position and source: the same file gives the same ids."""
    digest = hashlib.sha1(f"{index}\0{source}".encode()).hexdigest()
    candidate = f"mlk-{digest[:8]}"
    n = 0
    while candidate in taken:
        n += 1
        candidate = f"mlk-{digest[:8]}-{n}"
    return candidate


def _normalise_ids(cells: list[dict[str, Any]]) -> int:
    """Give every cell a unique, valid id; return how many ids were made up."""
    seen: set[str] = set()
    bad: list[int] = []
    for i, cell in enumerate(cells):
        cid = cell.get("id")
        if (
            not isinstance(cid, str)
            or not cid
            or len(cid) > 64
            or not set(cid) <= _ID_OK
            or cid in seen
        ):
            bad.append(i)
        else:
            seen.add(cid)
    for i in bad:
        new = _derived_id(i, _source(cells[i]), seen)
        seen.add(new)
        cells[i]["id"] = new
    return len(bad)


def _tags(cell: dict[str, Any]) -> tuple[str, ...]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list):
        return ()
    return tuple(t.strip() for t in tags if isinstance(t, str) and t.strip())


def load_notebook(path: str | Path) -> LoadedNotebook:
    """Read any nbformat version; ids normalised, no kernelspec means Python 3.

    Raises:
        NotebookError: the file is missing, not UTF-8, or not a notebook; the message
            names the file.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise NotebookError(f"{p}: no such notebook") from None
    except IsADirectoryError:
        raise NotebookError(f"{p}: is a directory, not a notebook") from None
    except OSError as exc:
        raise NotebookError(f"{p}: cannot be read: {exc.strerror}") from None
    return load_notebook_text(_decode(p, data), str(p))


def load_notebook_text(text: str, path: str) -> LoadedNotebook:
    """Like :func:`load_notebook`, from the JSON text (used by the server for unsaved work)."""
    p = Path(path)
    raw_version = _declared_version(text)
    nb = _parse(p, text)
    notes: list[str] = []
    made_up = _normalise_ids(nb.cells)
    if made_up:
        notes.append(
            f"{p}: {made_up} cell(s) had no valid unique id (nbformat {raw_version}); "
            "ids were derived from each cell's position and source"
        )
    kernelspec = nb.metadata.get("kernelspec") or {}
    kernel = kernelspec.get("name") if isinstance(kernelspec, dict) else None
    cells = [
        RawCell(
            index=i,
            id=c["id"],
            cell_type=c.get("cell_type", "code"),
            source=_source(c),
            tags=_tags(c),
        )
        for i, c in enumerate(nb.cells)
    ]
    return LoadedNotebook(
        path=str(p),
        cells=cells,
        kernel=kernel or "python3",
        nbformat=raw_version,
        metadata=dict(nb.metadata),
        warnings=notes,
    )


def _declared_version(text: str) -> str:
    try:
        raw = json.loads(text)
        return f"{raw.get('nbformat', '?')}.{raw.get('nbformat_minor', 0)}"
    except (ValueError, AttributeError):
        return "?"
