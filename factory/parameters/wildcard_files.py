"""Read wildcard files in the formats dynamicprompts reads: .txt, .yaml/.yml, .json.

Plain parsing with no template knowledge; values stay templates for
``factory.parameters.prompts`` to expand.
"""
from pathlib import PurePosixPath
from typing import Any

from factory.datafiles import parse_json
from factory.parameters.schema import check_text


def load_wildcard_file(name: str, data: bytes) -> dict[str, list[str]]:
    """Wildcards in a .txt, .yaml/.yml or .json file, as dynamicprompts reads
    them: a text file is one wildcard named for its stem, a structured file
    maps (nested) names to lists of values."""
    path = PurePosixPath(name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    suffix = path.suffix.lower()
    if suffix == ".txt":
        content: Any = [line for line in text.splitlines()
                        if not line.strip().startswith("#")]
    elif suffix == ".json":
        content = _load_json(name, text)
    elif suffix in (".yaml", ".yml"):
        content = _load_yaml(name, text)
    else:
        raise ValueError(f"{name}: wildcard files end in .txt, .yaml, .yml "
                         "or .json")
    if isinstance(content, list):
        found = {path.stem: _file_values(name, path.stem, content)}
    elif isinstance(content, dict):
        found = dict(_nested(name, content, ()))
    else:
        raise ValueError(f"{name}: expected a mapping of names to lists of "
                         f"values, not {type(content).__name__}")
    found = {key: values for key, values in found.items() if values}
    if not found:
        raise ValueError(f"{name}: no wildcard values found")
    return found


def _load_json(name: str, text: str) -> Any:
    """Strict JSON, bounded in depth, as every uploaded file is read."""
    return parse_json(text, where=name)


def _load_yaml(name: str, text: str) -> Any:
    try:
        import yaml  # optional: only YAML wildcard files need it
    except ImportError:
        raise ValueError(f"{name}: reading YAML needs PyYAML, which is not "
                         "installed") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ValueError(f"{name}: {where}{problem}") from None


def _nested(name: str, content: dict, prefix: tuple[str, ...]):
    """(wildcard name, values) pairs of a structured file's nested mapping."""
    for key, value in content.items():
        if not isinstance(key, str):
            raise ValueError(f"{name}: key {key!r} in "
                             f"'{'/'.join(prefix) or 'top level'}' is not text")
        here = "/".join((*prefix, key.strip("/")))
        if isinstance(value, dict):
            yield from _nested(name, value, (*prefix, key.strip("/")))
        elif isinstance(value, (str, list)):
            yield here, _file_values(name, here, value)
        elif value is not None:
            raise ValueError(f"{name}: key '{here}' holds a "
                             f"{type(value).__name__}; expected a list of "
                             "values or a nested mapping")


def _file_values(name: str, key: str, items: list | str) -> list[str]:
    values = []
    for number, item in enumerate([items] if isinstance(items, str) else items,
                                  1):
        if isinstance(item, dict):
            item = _weighted(name, key, number, item)
        if isinstance(item, bool) or not isinstance(item, (str, int, float,
                                                           type(None))):
            raise ValueError(f"{name}: key '{key}' item {number} is a "
                             f"{type(item).__name__}; expected text")
        if item is not None and str(item).strip():
            text = str(item).strip()
            check_text(text, f"{name}: key '{key}' item {number}")
            values.append(text)
    return values


def _weighted(name: str, key: str, number: int, item: dict) -> str:
    """A ``{"text": …, "weight": …}`` item as a ``weight::text`` value."""
    text = item.get("text") or item.get("content")
    weight = item.get("weight", 1)
    if not isinstance(text, str) or isinstance(weight, bool) or not isinstance(
            weight, (int, float)):
        raise ValueError(f"{name}: key '{key}' item {number} needs a 'text' "
                         "and a numeric 'weight'")
    return text if weight == 1 else f"{weight:g}::{text}"
