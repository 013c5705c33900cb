"""Typed YAML configs: safe loading into dataclasses, strict keys, key=value overrides."""
import dataclasses
import difflib
import os
import tempfile
import typing
from typing import Any, Iterable, Type, TypeVar

import yaml

from src.errors import UserError

T = TypeVar("T")


def read_yaml(path: str) -> dict:
    """Load a YAML mapping with yaml.safe_load; any problem is a UserError naming the file."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found (expected a YAML config)")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise UserError(f"{path}: invalid YAML{at}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys to values, got {type(data).__name__}")
    return data


def parse_overrides(items: Iterable[str]) -> dict:
    """Turn command-line `key=value` strings into a dict, values typed as YAML scalars."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r}: expected key=value")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _check_type(cls: type, key: str, value: Any, source: str) -> Any:
    """Coerce ints to floats where a float is declared; reject values of the wrong kind."""
    hint = typing.get_type_hints(cls)[key]
    allowed = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if float in allowed and isinstance(value, str):  # YAML 1.1 reads 1e-12 as a string
        try:
            return float(value)
        except ValueError:
            pass
    for kind in allowed:
        base = typing.get_origin(kind) or kind
        if isinstance(base, type) and isinstance(value, base) and not (
                base is int and isinstance(value, bool)):
            return value
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise UserError(f"{source}: key '{key}' expects {names}, got {value!r}")


def build_dataclass(cls: Type[T], values: dict, source: str) -> T:
    """Build `cls` from a dict; an unknown key is an error naming it and the nearest valid key."""
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            near = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise UserError(f"{source}: unknown key '{key}'{hint}")
        kwargs[key] = _check_type(cls, key, value, source)
    try:
        return cls(**kwargs)
    except (TypeError, UserError) as err:
        raise UserError(f"{source}: {err}") from None


def load_config(cls: Type[T], path: str, overrides: Iterable[str] = ()) -> T:
    """Read a YAML file into `cls`, then apply `key=value` overrides from the command line."""
    values = read_yaml(path)
    values.update(parse_overrides(overrides))
    return build_dataclass(cls, values, path)


def write_yaml_atomic(data: dict, path: str) -> None:
    """Write a mapping as YAML through a temporary file and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    os.replace(tmp, path)
