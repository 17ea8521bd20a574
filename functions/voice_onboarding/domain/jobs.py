"""Pipeline jobs: what the API hands to Step Functions, and the stages a job runs through.

One concept, one name: a `Stage` is a step of a job as every layer sees it. It carries the status and
error fields it writes on its owner (a voice or a speaker), the GPU job kind it submits (None for the
CPU split) and that kind's deadline. The sweeper, the failure handler and the GPU dispatch read these
attributes; nothing builds a field name from a string.
"""

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field


class OwnerType(StrEnum):
    VOICE = "voice"
    SPEAKER = "speaker"


class Stage(StrEnum):
    SPLITTING = "splitting"
    EMBEDDING = "embedding"
    CLONE = "clone"
    TRAINING = "training"

    @property
    def owner(self) -> OwnerType:
        return _STAGES[self].owner

    @property
    def status_field(self) -> str:
        return _STAGES[self].status_field

    @property
    def error_field(self) -> str:
        return _STAGES[self].error_field

    @property
    def gpu_kind(self) -> str | None:
        """The worker's job `kind` (contract/gpu.py) this stage submits; None for a CPU stage."""
        return _STAGES[self].gpu_kind

    @property
    def timeout_seconds(self) -> int | None:
        """Deadline of one GPU run after submission, queue time included (cold starts pull a large
        image); None for a CPU stage, which the state machine's task timeout bounds."""
        return _STAGES[self].timeout_seconds

    @classmethod
    def of_gpu_kind(cls, gpu_kind: str) -> "Stage":
        for stage in cls:
            if stage.gpu_kind == gpu_kind:
                return stage
        raise ValueError(f"Unknown GPU job stage {gpu_kind!r}")

    @classmethod
    def of_owner(cls, owner: OwnerType) -> tuple["Stage", ...]:
        return tuple(stage for stage in cls if stage.owner == owner)


@dataclass(frozen=True)
class _StageSpec:
    owner: OwnerType
    status_field: str
    error_field: str
    gpu_kind: str | None = None
    timeout_seconds: int | None = None


_STAGES: dict[Stage, _StageSpec] = {
    Stage.SPLITTING: _StageSpec(OwnerType.VOICE, "splitting_status", "splitting_error"),
    Stage.EMBEDDING: _StageSpec(OwnerType.VOICE, "embedding_status", "embedding_error", "embed", 45 * 60),
    Stage.CLONE: _StageSpec(OwnerType.SPEAKER, "clone_status", "clone_error", "clone", 20 * 60),
    Stage.TRAINING: _StageSpec(OwnerType.SPEAKER, "training_status", "training_error", "train_lora", 3 * 3600),
}


class JobKind(StrEnum):
    SPLIT_AND_EMBED = "split_and_embed"  # a new voice with audio: split, then embed
    SPLIT = "split"
    EMBED = "embed"
    CLONE = "clone"  # zero-shot speaker from a reference clip
    TRAIN_LORA = "train_lora"

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages an execution of this kind runs, in order."""
        return _KIND_STAGES[self]

    @property
    def owner(self) -> OwnerType:
        return self.stages[0].owner


_KIND_STAGES: dict[JobKind, tuple[Stage, ...]] = {
    JobKind.SPLIT_AND_EMBED: (Stage.SPLITTING, Stage.EMBEDDING),
    JobKind.SPLIT: (Stage.SPLITTING,),
    JobKind.EMBED: (Stage.EMBEDDING,),
    JobKind.CLONE: (Stage.CLONE,),
    JobKind.TRAIN_LORA: (Stage.TRAINING,),
}


class PipelineJob(BaseModel):
    """The execution input. Every state of the state machine reads its fields from here."""

    job_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    kind: JobKind
    partner: str
    # Voice name for voice jobs, speaker name for speaker jobs.
    name: str
    # The owner's immutable id (a voice's voice_id, a speaker's speaker_id): it addresses S3 and tells
    # the job's owner from a re-created namesake. Read it as `owner_id`; the wire name predates speakers.
    voice_id: str
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def owner(self) -> OwnerType:
        return self.kind.owner

    @property
    def owner_id(self) -> str:
        return self.voice_id


class SplitParams(BaseModel):
    max_samples: int | None = None
    sample_duration: int | None = None


class EmbedParams(BaseModel):
    tts_type: str | None = None


class CloneParams(BaseModel):
    tts_type: str | None = None


class TrainLoraParams(BaseModel):
    tts_type: str | None = None
    hyperparameters: dict[str, Any] | None = None
    adapter_version: int = 0


class JobDispatcher(Protocol):
    def start(self, job: PipelineJob) -> str:
        """Start the job asynchronously; return an execution reference (an execution ARN)."""
        ...
