"""Request paths as BentoML's metrics see them. BentoML's outermost middleware (RunnerTrafficMetricsMiddleware, in
_bentoml_impl/server/app.py) labels every request metric with the raw `scope["path"]`, so each distinct path a
client invents adds series (and multiprocess files under BENTOML_HOME) forever. A path no route serves is rewritten
to UNKNOWN before that middleware runs: the router answers it 404, as before, and all of them share one label.

Nothing inside BentoML's app runs before its metrics middleware (service middlewares come after it), so the rewrite
wraps the app itself: LabelledService is the bentoml Service whose to_asgi, which each worker calls to build its app,
puts PathLabels outside."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import bentoml
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

UNKNOWN = "/{unknown}"
"""The label (and path) of every request to a path the service does not serve; no route matches it."""


def _static_files(prefix: str, static: StaticFiles) -> set[str]:
    found: set[str] = set()
    for directory in [static.directory, *(static.all_directories or [])]:
        if directory is None:
            continue
        for root, _, files in os.walk(directory):
            relative = os.path.relpath(root, directory)
            found.update(
                f"{prefix}/{name}" if relative == "." else f"{prefix}/{relative}/{name}".replace(os.sep, "/")
                for name in files
            )
    return found


def served_paths(routes: Iterable[BaseRoute], prefix: str = "") -> tuple[set[str], list[BaseRoute]]:
    """The exact paths the routes serve (static files listed one by one) and the routes whose paths have
    parameters, which must be matched."""
    paths: set[str] = set()
    patterns: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Mount):
            mount = prefix + route.path
            if isinstance(route.app, StaticFiles):
                paths |= _static_files(mount, route.app)
            elif (inner := getattr(route.app, "routes", None)) is not None:
                inner_paths, inner_patterns = served_paths(inner, mount)
                paths |= inner_paths
                patterns += inner_patterns
            else:
                patterns.append(route)  # an app whose paths cannot be listed: its whole prefix is served
        elif isinstance(route, Route) and not route.param_convertors:
            paths.add(prefix + route.path)
        else:
            patterns.append(route)
    return paths, patterns


class PathLabels:
    """Rewrites the path of a request that no route serves to UNKNOWN; every other request passes untouched (a
    set lookup for the exact routes, the only cost on the hot path)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths, self.patterns = served_paths(app.routes)

    def _serves(self, scope: Scope) -> bool:
        if scope["path"] in self.paths:
            return True
        return any(route.matches(scope)[0] is not Match.NONE for route in self.patterns)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self._serves(scope):
            scope["path"] = UNKNOWN
            scope["raw_path"] = UNKNOWN.encode()
        await self.app(scope, receive, send)


class LabelledService(bentoml.Service):  # type: ignore[misc]
    """A bentoml Service whose ASGI app labels unknown paths as one (PathLabels); nothing else differs."""

    __slots__ = ()

    def to_asgi(self, is_main: bool = True) -> Any:
        return PathLabels(super().to_asgi(is_main=is_main))


def label_paths(service: Any) -> None:
    """Make the Service that @bentoml.service built a LabelledService (same fields: its class has no slots of its
    own), so that `bentoml serve`'s workers build their app through LabelledService.to_asgi."""
    if not isinstance(service, bentoml.Service):
        raise TypeError(f"expected the Service @bentoml.service returns, got {type(service).__name__}")
    service.__class__ = LabelledService
