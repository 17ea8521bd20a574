"""Process-wide collaborators of the pipeline handlers (built once per warm Lambda, injectable by tests)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from voice_onboarding.pipeline.jobs import PipelineJob
from voice_onboarding.pipeline.runpod_client import GpuClient, make_gpu_client
from voice_onboarding.services.container import Services, build_services

_lock = threading.Lock()
_services: Services | None = None
_override: Services | None = None
_gpu_clients: dict[tuple[str | None, str | None], GpuClient] = {}
_gpu_override: GpuClient | None = None


class NoDispatch:
    """Pipeline steps never start other jobs; building a real dispatcher here would be wasted work
    (and, in local mode, a second thread pool)."""

    def start(self, job: PipelineJob) -> str:
        raise RuntimeError("dispatch from inside a pipeline step is not allowed")


def pipeline_services() -> Services:
    global _services
    if _override is not None:
        return _override
    with _lock:
        if _services is None:
            _services = build_services(dispatcher=NoDispatch())
        return _services


@contextmanager
def using_services(services: Services) -> Iterator[Services]:
    """Make the pipeline handlers use `services` (tests; the local stack's shared moto clients)."""
    global _override
    previous, _override = _override, services
    try:
        yield services
    finally:
        _override = previous


def gpu_client(services: Services) -> GpuClient:
    """One client per endpoint per process (the HTTP client keeps its connection pool warm)."""
    if _gpu_override is not None:
        return _gpu_override
    settings = services.settings
    key = (settings.runpod_endpoint_id, settings.runpod_base_url)
    with _lock:
        if key not in _gpu_clients:
            _gpu_clients[key] = make_gpu_client(settings)
        return _gpu_clients[key]


@contextmanager
def using_gpu_client(client: GpuClient) -> Iterator[GpuClient]:
    global _gpu_override
    previous, _gpu_override = _gpu_override, client
    try:
        yield client
    finally:
        _gpu_override = previous
