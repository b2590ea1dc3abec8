"""The accelerator catalogue: bundled package data plus operators' own YAML files.

An operator's file has the same shape as the bundled ``accelerators.yaml``: a top-level ``accelerators``
list. An entry whose ``id`` (or alias) is already known overrides the fields it names; a new ``id`` adds a
type (then ``name``, ``vendor`` and ``country`` are required). Errors name the file, line and field.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from accelpool.core.errors import InputError
from accelpool.core.types import AcceleratorType

_FIELDS = {f.name: f for f in fields(AcceleratorType)}
_NUMERIC = {
    "memory_gb",
    "memory_bw_gbps",
    "bf16_tflops_dense",
    "fp8_tflops_dense",
    "int8_tops_dense",
    "tdp_w",
}
_REQUIRED_NEW = ("name", "vendor", "country")


class Catalog(Mapping[str, AcceleratorType]):
    """Accelerator types by id; aliases resolve too (``catalog.resolve("nvidia-h100-sxm") -> "h100"``)."""

    def __init__(self, types: Iterable[AcceleratorType]) -> None:
        self._types: dict[str, AcceleratorType] = {}
        self._alias: dict[str, str] = {}
        for t in types:
            self._add(t)

    def _add(self, t: AcceleratorType) -> None:
        self._types[t.id] = t
        self._alias[t.id.lower()] = t.id
        for a in t.aliases:
            self._alias[a.lower()] = t.id

    def __getitem__(self, key: str) -> AcceleratorType:
        return self._types[self.resolve(key)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._alias

    def resolve(self, name: str) -> str:
        """The catalogue id for ``name`` (id or alias, any case); InputError with a suggestion if unknown."""
        found = self._alias.get(name.lower())
        if found is None:
            raise InputError(f"unknown accelerator type '{name}'{self.suggest(name)}", value=name)
        return found

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name.lower(), list(self._alias), n=1, cutoff=0.5)
        return f" (did you mean '{self._alias[close[0]]}'?)" if close else ""

    def merged(self, other: Iterable[AcceleratorType]) -> Catalog:
        out = Catalog(self._types.values())
        for t in other:
            out._add(t)
        return out


def _line_of(node: yaml.Node | None) -> int | None:
    return None if node is None else node.start_mark.line + 1


def _mapping_lines(node: yaml.Node) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): v.start_mark.line + 1 for k, v in node.value}


def _coerce(key: str, value: Any, where: dict[str, Any]) -> Any:
    if key in _NUMERIC:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InputError("must be a non-negative number or null", field=key, value=value, **where)
        return float(value)
    if key in ("aliases", "sources"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError("must be a list of strings", field=key, value=value, **where)
        return tuple(value)
    if key == "training_capable":
        if not isinstance(value, bool):
            raise InputError("must be true or false", field=key, value=value, **where)
        return value
    if key == "release_year":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InputError("must be an integer year or null", field=key, value=value, **where)
        return value
    if value is not None and not isinstance(value, str):
        raise InputError("must be a string", field=key, value=value, **where)
    return value


def parse_catalog_text(text: str, filename: str, base: Catalog | None = None) -> Catalog:
    """Parse catalogue YAML; entries override or extend ``base``."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            file=filename,
            line=None if mark is None else mark.line + 1,
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("accelerators"), list):
        raise InputError(
            "expected a mapping with an 'accelerators' list", file=filename, line=1, field="accelerators"
        )
    list_node = next(v for k, v in root.value if k.value == "accelerators")  # type: ignore[union-attr]
    catalog = base or Catalog([])
    added: list[AcceleratorType] = []
    for entry, node in zip(data["accelerators"], list_node.value, strict=True):
        added.append(_parse_entry(entry, node, filename, catalog))
        catalog = catalog.merged([added[-1]])
    return catalog


def _parse_entry(entry: Any, node: yaml.Node, filename: str, catalog: Catalog) -> AcceleratorType:
    line = _line_of(node)
    if not isinstance(entry, dict):
        raise InputError("each accelerator must be a mapping", file=filename, line=line)
    lines = _mapping_lines(node)
    ident = entry.get("id")
    if not isinstance(ident, str) or not ident:
        raise InputError("missing or empty", file=filename, line=line, field="id", value=ident)
    values: dict[str, Any] = {}
    for key, value in entry.items():
        where: dict[str, Any] = {"file": filename, "line": lines.get(str(key), line)}
        if key not in _FIELDS:
            close = difflib.get_close_matches(str(key), list(_FIELDS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise InputError(f"unknown field{hint}", field=str(key), value=value, **where)
        values[key] = _coerce(key, value, where)
    if ident in catalog:
        existing = catalog[ident]
        values.pop("id")
        return replace(existing, **values)
    for key in _REQUIRED_NEW:
        if not values.get(key):
            raise InputError(
                f"required for a new accelerator type '{ident}'", file=filename, line=line, field=key
            )
    return AcceleratorType(**values)


def bundled_catalog() -> Catalog:
    text = resources.files("accelpool.catalog").joinpath("accelerators.yaml").read_text(encoding="utf-8")
    return parse_catalog_text(text, "accelpool/catalog/accelerators.yaml")


def load_catalog(extra_files: Iterable[str | Path] = ()) -> Catalog:
    """The bundled catalogue, then each operator file in order (later files win)."""
    catalog = bundled_catalog()
    for path in extra_files:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read catalogue file: {exc.strerror}", file=str(p)) from None
        catalog = parse_catalog_text(text, str(p), base=catalog)
    return catalog
