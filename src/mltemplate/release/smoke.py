"""`make smoke URL=...`: smoke-test a running prediction service: /readyz answers 200, POST /predict with
examples/predict.json answers 200 with the answer /metadata's task calls for (labels and class probabilities, or
numbers), and /metadata (optionally) reports the expected release version."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mltemplate.errors import CommandError
from mltemplate.paths import EXAMPLE_FILE

TIMEOUT_S = 30.0


def _request(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    if urlsplit(url).scheme not in {"http", "https"}:
        raise CommandError(f"smoke test URLs must be http(s), got {url!r}")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=body, headers={"Content-Type": "application/json"} if body is not None else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (scheme checked above)
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def _json(what: str, status: int, body: bytes) -> Any:
    if status != 200:
        raise CommandError(f"{what} answered {status}, expected 200: {body[:300]!r}")
    try:
        return json.loads(body)
    except ValueError:
        raise CommandError(f"{what} answered 200 but not JSON: {body[:300]!r}") from None


def _versions(value: Any) -> set[str]:
    """Every value of a `version` key in a JSON document, at any depth."""
    if isinstance(value, dict):
        found = {str(v) for k, v in value.items() if k == "version" and isinstance(v, str)}
        return found.union(*(_versions(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_versions(v) for v in value))
    return set()


def answer_problem(prediction: Any, metadata: Any) -> str | None:
    """What is wrong with a /predict answer for the task /metadata names (None: nothing): each prediction must hold
    a number (regression) or a known label and a probability per class (classification)."""
    items = prediction.get("predictions") if isinstance(prediction, dict) else None
    if not isinstance(items, list) or not items:
        return f"expected a non-empty `predictions` list, got {str(prediction)[:200]}"
    task = metadata.get("task", "binary") if isinstance(metadata, dict) else "binary"
    classes = metadata.get("classes", []) if isinstance(metadata, dict) else []
    for item in items:
        if task == "regression":
            if not isinstance(item, dict) or not isinstance(item.get("value"), int | float):
                return f"a regression model must answer {{'value': <number>}} per record, got {str(item)[:200]}"
        elif not isinstance(item, dict) or item.get("label") not in classes:
            return f"expected a label among {classes}, got {str(item)[:200]}"
        elif set(item.get("probabilities") or {}) != set(classes):
            return f"expected a probability for each of {classes}, got {str(item)[:200]}"
    return None


def check(url: str, *, example: Path = EXAMPLE_FILE, expect_version: str | None = None) -> dict[str, Any]:
    """Run the three checks against `url`; raise CommandError naming the first that fails. Returns what was seen."""
    url = url.rstrip("/")
    try:
        status, _ = _request(f"{url}/readyz")
        if status != 200:
            raise CommandError(f"{url}/readyz answered {status}, expected 200")
        prediction = _json(f"POST {url}/predict", *_request(f"{url}/predict", example.read_bytes()))
        if not prediction:
            raise CommandError(f"POST {url}/predict answered an empty document")
        metadata = _json(f"{url}/metadata", *_request(f"{url}/metadata"))
    except (urllib.error.URLError, OSError) as error:
        raise CommandError(f"cannot reach {url}: {error}") from None
    problem = answer_problem(prediction, metadata)
    if problem:
        raise CommandError(f"POST {url}/predict: {problem}")
    if expect_version is not None and expect_version not in _versions(metadata):
        raise CommandError(
            f"{url}/metadata reports versions {sorted(_versions(metadata))}, expected {expect_version!r}"
        )
    return {"prediction": prediction, "metadata": metadata}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mltemplate.release.smoke", description=__doc__)
    parser.add_argument("url", help="base URL of the service, e.g. http://127.0.0.1:3000")
    parser.add_argument("--example", type=Path, default=EXAMPLE_FILE, help="request body for POST /predict")
    parser.add_argument("--expect-version", default=None, help="release version /metadata must report")
    args = parser.parse_args(argv)
    check(args.url, example=args.example, expect_version=args.expect_version)
    print(f"smoke: {args.url} ready, /predict and /metadata answered")


if __name__ == "__main__":
    from mltemplate.errors import run

    sys.exit(run(main))
