"""Unknown paths share one label: PathLabels rewrites every path no route serves to UNKNOWN before BentoML's metrics
middleware sees it, and leaves the served ones (exact routes, static files, routes with parameters) untouched."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import bentoml
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mltemplate.serving.paths import UNKNOWN, LabelledService, PathLabels, label_paths, served_paths


def _ok(_: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


@pytest.fixture
def app(tmp_path: Path) -> Starlette:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.css").write_text("body {}")
    inner = Starlette(routes=[Route("/metadata", _ok)])
    return Starlette(
        routes=[
            Route("/predict", _ok, methods=["POST"]),
            Route("/v2/models/{name}/infer", _ok, methods=["POST"]),
            Mount("/static_content", StaticFiles(directory=tmp_path / "static")),
            Mount("/", inner),
        ]
    )


def test_served_paths_lists_exact_routes_static_files_and_mounted_apps(app: Starlette) -> None:
    paths, patterns = served_paths(app.routes)
    assert paths == {"/predict", "/static_content/index.css", "/metadata"}
    assert [getattr(route, "path", None) for route in patterns] == ["/v2/models/{name}/infer"]


async def _seen_path(app: Starlette, path: str, method: str = "GET") -> str:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])

    labels = PathLabels(app)
    labels.app = inner
    await labels({"type": "http", "path": path, "method": method, "root_path": ""}, None, None)
    return seen[0]


@pytest.mark.parametrize(
    ("path", "seen"),
    [
        ("/predict", "/predict"),
        ("/metadata", "/metadata"),
        ("/static_content/index.css", "/static_content/index.css"),
        ("/v2/models/any/infer", "/v2/models/any/infer"),
        ("/static_content/none.css", UNKNOWN),
        ("/wp-admin/1", UNKNOWN),
        ("/predict/", UNKNOWN),
    ],
)
def test_unknown_paths_become_the_one_label_and_served_ones_pass(app: Starlette, path: str, seen: str) -> None:
    assert asyncio.run(_seen_path(app, path)) == seen


def test_a_labelled_service_builds_its_app_with_path_labels_outside() -> None:
    @bentoml.service
    class Echo:
        @bentoml.api
        def echo(self, text: str) -> str:
            return text

    label_paths(Echo)
    assert isinstance(Echo, LabelledService)
    assert isinstance(Echo, bentoml.Service)
    assert isinstance(Echo.to_asgi(), PathLabels)


def test_label_paths_refuses_what_is_not_a_service() -> None:
    with pytest.raises(TypeError, match=r"expected the Service @bentoml\.service returns, got int"):
        label_paths(3)
