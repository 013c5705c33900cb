"""Reading a user's JSON and JSON-lines files with errors that name the file, line and column."""
import json
from pathlib import Path
from typing import Any, Iterator

from src.errors import UserError


def read_text(path: str | Path) -> str:
    """The whole file as UTF-8 text; a missing or non-UTF-8 file is a UserError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder; expected a JSON file") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: byte {err.start} is not UTF-8; expected a UTF-8 JSON file") from None


def load_json(path: str | Path) -> Any:
    """Parse a JSON file; malformed JSON is a UserError naming the file, line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: line {err.lineno} column {err.colno}: {err.msg} (expected valid JSON)") from None


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, object) for each non-blank line of a JSON-lines file."""
    return json_lines(read_text(path), path)


def json_lines(text: str, path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, object) for each non-blank line of a JSON-lines file's text."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: line {number} column {err.colno}: {err.msg} "
                            "(expected one JSON object per line)") from None
