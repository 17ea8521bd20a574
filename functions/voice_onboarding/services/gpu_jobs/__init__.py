"""GPU job kinds, keyed by stage (`embed`, `clone`, `train_lora`): one module per kind.

Each module provides:
    build_input(services, job) -> dict            the worker's `input` (presigned URLs, no credentials)
    apply_result(services, job, output) -> None   record a COMPLETED run's output, mark the stage completed
    apply_failure(services, job, reason) -> None  mark the stage failed with `reason`
and optionally:
    record_progress(services, job, progress) -> None   progress of a running job (RunPod status, run id)
    TIMEOUT_SECONDS: int                               overall deadline of one run (else DEFAULT_TIMEOUTS)
Modules are imported lazily, so a kind whose module is missing fails only its own jobs, clearly.
"""

import importlib
from types import ModuleType
from typing import Any, Protocol, cast

from voice_onboarding.pipeline.jobs import PipelineJob
from voice_onboarding.services.container import Services

MODULES = {
    "embed": "voice_onboarding.services.gpu_jobs.embed",
    "clone": "voice_onboarding.services.gpu_jobs.clone",
    "train_lora": "voice_onboarding.services.gpu_jobs.train_lora",
}
# Deadline of one GPU run after submission, queue time included (cold starts pull a large image).
DEFAULT_TIMEOUTS = {"embed": 45 * 60, "clone": 20 * 60, "train_lora": 3 * 3600}


class GpuJobError(Exception):
    """A GPU job cannot be submitted or its result cannot be recorded; the message is user-facing."""


class GpuJobKind(Protocol):
    def build_input(self, services: Services, job: PipelineJob) -> dict[str, Any]: ...

    def apply_result(self, services: Services, job: PipelineJob, output: dict[str, Any]) -> None: ...

    def apply_failure(self, services: Services, job: PipelineJob, reason: str) -> None: ...


def _module(stage: str) -> ModuleType:
    if stage not in MODULES:
        raise GpuJobError(f"Unknown GPU job stage {stage!r}")
    try:
        return importlib.import_module(MODULES[stage])
    except ModuleNotFoundError as error:
        if error.name != MODULES[stage]:
            raise
        raise GpuJobError(f"GPU job kind {stage!r} is not available in this deployment") from error


def get_kind(stage: str) -> GpuJobKind:
    return cast(GpuJobKind, _module(stage))


def timeout_seconds(stage: str) -> int:
    return int(getattr(_module(stage), "TIMEOUT_SECONDS", DEFAULT_TIMEOUTS.get(stage, 3600)))


def record_progress(services: Services, job: PipelineJob, stage: str, progress: dict[str, Any]) -> None:
    hook = getattr(_module(stage), "record_progress", None)
    if hook is not None:
        hook(services, job, progress)
