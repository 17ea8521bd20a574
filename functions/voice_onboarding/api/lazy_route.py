"""Routes that build their FastAPI state when first used, not when declared.

FastAPI builds each route when it is declared: it analyses the endpoint's parameters and dependencies and
creates a pydantic field (a TypeAdapter) per parameter and response model, some 2-3 ms a route. FastAPI
0.16x then builds the route a second time, with the including router's context, the first time an
included router is routed through. The first build is never used by a request: `LazyAPIRoute` keeps the
declaration (what the include and Starlette's matching read) and runs FastAPI's own build the first time
anything else is asked of the route. The API's cold start no longer pays for its routes twice.
"""

import inspect
import threading
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import compile_path, get_name

_SIGNATURE = inspect.signature(APIRoute.__init__)
_BUILD_LOCK = threading.RLock()


class LazyAPIRoute(APIRoute):
    """An `APIRoute` (use as `APIRouter(route_class=LazyAPIRoute)`) whose declared attributes are set at
    once and whose built ones (dependant, body and response fields, handler) on first access."""

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        self.declaration = (path, endpoint, kwargs)
        self.built = False
        self._building = False
        declared = _SIGNATURE.bind(self, path, endpoint, **kwargs)
        declared.apply_defaults()
        for name, value in declared.arguments.items():
            if name != "self":
                self.__dict__[name] = value
        # Normalised as APIRoute does (tests/api/test_lazy_route.py checks they agree with a built route).
        self.__dict__.update(
            name=get_name(endpoint) if kwargs.get("name") is None else kwargs["name"],
            methods={method.upper() for method in kwargs.get("methods") or ["GET"]},
            tags=list(kwargs.get("tags") or []),
            responses=dict(kwargs.get("responses") or {}),
            dependencies=list(kwargs.get("dependencies") or []),
            description=(kwargs.get("description") or inspect.cleandoc(endpoint.__doc__ or "")).split("\f")[0].strip(),
            # Declared: none. The build infers it from a generator endpoint, and so does an include's build.
            stream_item_type=None,
        )
        if "form_limits" in self.__dict__:
            if self.form_limits is None:
                self.form_limits = {}  # no route-level limits: the routers' apply
            else:
                del self.__dict__["form_limits"]  # validated by the build
        self.path_regex, self.path_format, self.param_convertors = compile_path(path)

    def build(self) -> None:
        with _BUILD_LOCK:
            if self.built or self._building:
                return
            self._building = True
            try:
                path, endpoint, kwargs = self.declaration
                APIRoute.__init__(self, path, endpoint, **kwargs)
            finally:
                self._building = False
            self.built = True

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not set yet, i.e. the ones the build sets.
        if name.startswith("__") or name in ("declaration", "built", "_building") or self.built:
            raise AttributeError(name)
        with _BUILD_LOCK:  # a request in another thread may be building it: wait for that build
            if self._building:
                raise AttributeError(name)  # read by the build itself: not set yet, as on any APIRoute
            self.build()
        return getattr(self, name)
