"""GPU job kinds: one class per kind of the contract (contract/gpu.py KINDS), registered here.

Adding a GPU job kind (docs/architecture.md) = its `GpuKind` entry in the contract (input and result
models, deadline, stage name and owner), one `GpuJobKind` class here, and its worker task
(gpu_worker/tasks/<kind>.py). Its `Stage` and `JobKind`, the sweeper's deadline, the failure handler and
the dispatch loop derive from those; tests/test_job_kinds.py names any piece that is missing.
"""

from voice_onboarding.domain.jobs import Stage
from voice_onboarding.services.gpu_jobs.base import GpuJobError, GpuJobKind
from voice_onboarding.services.gpu_jobs.clone import CloneJob
from voice_onboarding.services.gpu_jobs.embed import EmbedJob
from voice_onboarding.services.gpu_jobs.train_lora import TrainLoraJob

KINDS: dict[str, type[GpuJobKind]] = {
    kind.stage.gpu_kind: kind for kind in (EmbedJob, CloneJob, TrainLoraJob) if kind.stage.gpu_kind
}


def get_kind(gpu_kind: str) -> type[GpuJobKind]:
    if gpu_kind not in KINDS:
        raise GpuJobError(f"Unknown GPU job stage {gpu_kind!r}")
    return KINDS[gpu_kind]


def of_stage(stage: Stage) -> type[GpuJobKind] | None:
    """The kind a stage submits; None for a CPU stage (splitting)."""
    return KINDS.get(stage.gpu_kind) if stage.gpu_kind else None


__all__ = ["KINDS", "CloneJob", "EmbedJob", "GpuJobError", "GpuJobKind", "TrainLoraJob", "get_kind", "of_stage"]
