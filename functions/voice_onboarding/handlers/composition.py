"""The composition root of every Lambda: what a handler needs, built once per warm process.

- `services()`: repositories, blob store and the Step Functions dispatcher (API, sweeper).
- `pipeline_services()`: the same without a dispatcher (a pipeline step never starts another job).
- `gpu_client()`: the RunPod client, one per endpoint (its HTTP connection pool stays warm).

`override(...)` is the one hook for the local stack and tests: inside it, the handlers use the given
services and/or GPU client (moto-backed services, the in-process worker of infra/local/gpu.py).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from voice_onboarding.domain.jobs import PipelineJob
from voice_onboarding.services.container import Services, build_services

if TYPE_CHECKING:  # the RunPod client (httpx) is imported by the GPU Lambdas only, not on the API's cold start
    from voice_onboarding.adapters.runpod import GpuClient

_lock = threading.Lock()
_built: dict[str, Services] = {}
_gpu_clients: dict[tuple[str | None, str | None], "GpuClient"] = {}
_override_services: Services | None = None
_override_gpu: "GpuClient | None" = None


class NoDispatch:
    """Pipeline steps never start other jobs; building a real dispatcher for them would be wasted work."""

    def start(self, job: PipelineJob) -> str:
        raise RuntimeError("dispatch from inside a pipeline step is not allowed")


def services() -> Services:
    if _override_services is not None:
        return _override_services
    with _lock:
        if "api" not in _built:
            _built["api"] = build_services()
        return _built["api"]


def pipeline_services() -> Services:
    if _override_services is not None:
        return _override_services
    with _lock:
        if "pipeline" not in _built:
            _built["pipeline"] = build_services(dispatcher=NoDispatch())
        return _built["pipeline"]


def gpu_client(services: Services) -> "GpuClient":
    if _override_gpu is not None:
        return _override_gpu
    from voice_onboarding.adapters.runpod import make_gpu_client

    settings = services.settings
    key = (settings.runpod_endpoint_id, settings.runpod_base_url)
    with _lock:
        if key not in _gpu_clients:
            _gpu_clients[key] = make_gpu_client(settings)
        return _gpu_clients[key]


@contextmanager
def override(services: Services | None = None, gpu_client: "GpuClient | None" = None) -> Iterator[None]:
    """Make every handler use `services` and/or `gpu_client` until the block ends (nests)."""
    global _override_services, _override_gpu
    previous = _override_services, _override_gpu
    _override_services = services or _override_services
    _override_gpu = gpu_client or _override_gpu
    try:
        yield
    finally:
        _override_services, _override_gpu = previous
