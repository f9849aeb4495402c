"""GradingResult -> Gradescope's results.json: capped, schema-checked, written atomically."""
from __future__ import annotations

import json
import math
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import jsonschema

from autograder.engine.results import GradingResult

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "gradescope_results.schema.json"
MAX_TEST_OUTPUT = 16 * 1024
MAX_TOTAL_BYTES = 900 * 1024


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _clean(text: str) -> str:
    """Text safe for the file: valid UTF-8, \\n newlines, no control characters."""
    text = text.encode("utf-8", errors="replace").decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch if ch in "\n\t" or ord(ch) >= 32 else "?" for ch in text)


def cap(text: str, limit: int) -> str:
    text = _clean(text)
    if len(text.encode()) <= limit:
        return text
    cut = text.encode()[: limit - 200].decode("utf-8", errors="ignore")
    return cut + f"\n[... output cut: {len(text.encode()) - len(cut.encode())} more bytes not shown]"


MAX_ITEMS = 50          # entries kept of any list or dict in extra_data
MAX_DEPTH = 6


def _data(value, limit: int, depth: int = 0):
    """JSON data safe for the file: strings cleaned and capped at ``limit`` bytes, containers cut
    to MAX_ITEMS entries and MAX_DEPTH levels, non-finite floats and other objects as text."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return cap(value, limit)
    if depth >= MAX_DEPTH:
        return "[... nested too deep]"
    if isinstance(value, dict):
        items = list(value.items())
        out = {cap(str(k), 200): _data(v, limit, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["[cut]"] = f"{len(items) - MAX_ITEMS} more entries not shown"
        return out
    if isinstance(value, (list, tuple)):
        out = [_data(v, limit, depth + 1) for v in list(value)[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            out.append(f"[... {len(value) - MAX_ITEMS} more entries not shown]")
        return out
    return cap(str(value), limit)


def _extra(extra: dict, limit: int) -> dict:
    """``extra_data`` within ``limit`` bytes as JSON: cleaned, then its largest entries dropped
    (and named) until it fits."""
    data = _data(extra, max(limit // 4, 64))
    size = len(json.dumps(data).encode())
    if size <= limit:
        return data
    for key in sorted(data, key=lambda k: -len(json.dumps(data[k]).encode())):
        if key == "execution_time":
            continue
        data[key] = "[cut: too large for results.json]"
        if len(json.dumps(data).encode()) <= limit:
            break
    return data


def to_json(result: GradingResult, per_test_limit: int = MAX_TEST_OUTPUT) -> dict:
    tests = []
    for t in result.tests:
        entry = {"name": cap(t.name, 1000), "score": round(float(t.score), 6), "max_score": float(t.max_score),
                 "status": t.status, "output": cap(t.output, per_test_limit), "visibility": t.visibility,
                 # Gradescope documents no per-test time field: it travels in extra_data
                 "extra_data": _extra({**t.extra, "execution_time": round(max(t.execution_time, 0.0), 3),
                                      "outcome": t.outcome},
                                      per_test_limit)}
        if t.number:
            entry["number"] = cap(str(t.number), 100)
        if t.tags:
            entry["tags"] = [cap(str(x), 200) for x in t.tags][:MAX_ITEMS]
        tests.append(entry)
    board = [_data(t.leaderboard, 200) for t in result.tests if t.leaderboard]
    return {**({"leaderboard": board} if board else {}),
            "score": result.score, "execution_time": round(result.execution_time, 3),
            "output": cap(result.output or result.summary(), per_test_limit), "output_format": "text",
            "test_output_format": "text", "visibility": "visible", "stdout_visibility": "hidden",
            "extra_data": _extra({"assignment": result.assignment, "grader_error": result.grader_error,
                                  **({"total_points": result.total_points} if result.total_points is not None else {}),
                                  **({"extra_credit": result.extra_credit} if result.extra_credit else {}),
                                  **result.extra}, per_test_limit),
            "tests": tests}


def render(result: GradingResult) -> str:
    """The results.json text, validated, under the total size cap (outputs shrink until it fits)."""
    limit = MAX_TEST_OUTPUT
    while True:
        data = to_json(result, limit)
        text = json.dumps(data, indent=1, allow_nan=False)
        if len(text.encode()) <= MAX_TOTAL_BYTES or limit <= 256:
            break
        limit //= 2
    jsonschema.validate(data, schema())
    return text


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(result: GradingResult, path: Path) -> None:
    write_atomic(path, render(result))
