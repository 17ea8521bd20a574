"""GPU job kinds: one class per kind, registered here by the worker `kind` its stage submits.

Adding a GPU job kind = a `Stage` member (domain/jobs.py), its input/result models (contract/gpu.py),
one `GpuJobKind` class here, and its task in the worker (gpu_worker/tasks/). The sweeper's deadlines, the
failure handler and the dispatch loop derive from the registry and the Stage; nothing else changes.
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
