"""Pipeline jobs: what the API hands to Step Functions, and the stages a job runs through.

One concept, one name: a `Stage` is a step of a job as every layer sees it. It carries the status and
error fields it writes on its owner (a voice or a speaker), the GPU job kind it submits (None for the
CPU split) and that kind's deadline. The sweeper, the failure handler and the GPU dispatch read these
attributes; only `Stage` forms a field name. The GPU stages and job kinds come from the contract's
table of kinds (contract/gpu.py KINDS), so this module names no GPU kind.

A job is a `VoiceJob` or a `SpeakerJob` (the owner's id under its own name), parsed by `PipelineJob`.
"""

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol

from pydantic import AliasChoices, BaseModel, Discriminator, Field, Tag, TypeAdapter, model_validator

from voice_onboarding.contract.gpu import KINDS as GPU_KINDS


class OwnerType(StrEnum):
    VOICE = "voice"
    SPEAKER = "speaker"


@dataclass(frozen=True)
class _StageSpec:
    owner: OwnerType
    gpu_kind: str | None = None  # the worker's job `kind`; None for a CPU stage
    timeout_seconds: int | None = None


# The one CPU stage (the split Lambda), then one stage per GPU kind of the contract: adding a kind to
# contract/gpu.py KINDS adds its Stage and its JobKind here; nothing in this module names a GPU kind.
_SPECS: dict[str, _StageSpec] = {
    "splitting": _StageSpec(OwnerType.VOICE),
    **{kind.stage: _StageSpec(OwnerType(kind.owner), name, kind.deadline_seconds) for name, kind in GPU_KINDS.items()},
}


class _StageBase(StrEnum):
    @property
    def owner(self) -> OwnerType:
        return _SPECS[self.value].owner

    @property
    def status_field(self) -> str:
        """The owner's attribute holding this stage's JobStatus (the one place the name is formed)."""
        return f"{self.value}_status"

    @property
    def error_field(self) -> str:
        return f"{self.value}_error"

    @property
    def gpu_kind(self) -> str | None:
        """The worker's job `kind` (contract/gpu.py) this stage submits; None for a CPU stage."""
        return _SPECS[self.value].gpu_kind

    @property
    def timeout_seconds(self) -> int | None:
        """Deadline of one GPU run after submission, queue time included (the contract's
        `deadline_seconds`); None for a CPU stage, which the state machine's task timeout bounds."""
        return _SPECS[self.value].timeout_seconds

    @classmethod
    def of_gpu_kind(cls, gpu_kind: str) -> "Stage":
        for stage in cls:
            if stage.gpu_kind == gpu_kind:
                return stage
        raise ValueError(f"Unknown GPU job stage {gpu_kind!r}")

    @classmethod
    def of_owner(cls, owner: OwnerType) -> tuple["Stage", ...]:
        return tuple(stage for stage in cls if stage.owner == owner)


# Stage.SPLITTING, then Stage.EMBEDDING, Stage.CLONE, Stage.TRAINING (from the contract's kinds).
Stage = _StageBase("Stage", {name.upper(): name for name in _SPECS}, module=__name__)


class _JobKindBase(StrEnum):
    @property
    def stages(self) -> tuple["Stage", ...]:
        """The stages an execution of this kind runs, in order."""
        return _KIND_STAGES[self.value]

    @property
    def owner(self) -> OwnerType:
        return self.stages[0].owner


# An execution's `kind`: the split jobs, then one GPU-only job per contract kind (its one stage; the
# state machine submits the job kind as the GPU kind).
_KIND_STAGES: dict[str, tuple[Stage, ...]] = {
    "split_and_embed": (Stage.SPLITTING, Stage.EMBEDDING),  # a new voice with audio: split, then embed
    "split": (Stage.SPLITTING,),
    **{name: (Stage.of_gpu_kind(name),) for name in GPU_KINDS},
}
JobKind = _JobKindBase("JobKind", {name.upper(): name for name in _KIND_STAGES}, module=__name__)


class PipelineJob(BaseModel):
    """The execution input; every state of the state machine reads its fields from here. A job is a
    `VoiceJob` or a `SpeakerJob`, told apart by its kind's owner: `PipelineJob.model_validate(data)`
    returns the one of the job's kind (and refuses a kind of the other owner)."""

    job_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    kind: JobKind
    partner: str
    name: str  # the voice's or the speaker's name
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def owner(self) -> OwnerType:
        return self.kind.owner

    @property
    def owner_id(self) -> str:
        """The owner's immutable id: it addresses S3 and tells the job's owner from a re-created namesake."""
        raise NotImplementedError

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> "PipelineJob":  # type: ignore[override]
        if cls is PipelineJob:
            return _ANY_JOB.validate_python(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes, **kwargs: Any) -> "PipelineJob":  # type: ignore[override]
        if cls is PipelineJob:
            return _ANY_JOB.validate_json(json_data, **kwargs)
        return super().model_validate_json(json_data, **kwargs)

    @model_validator(mode="after")
    def _kind_of_this_owner(self) -> "PipelineJob":
        if type(self) is PipelineJob:
            raise ValueError("a job is a VoiceJob or a SpeakerJob")
        if self.kind.owner != _OWNER_OF[type(self)]:
            raise ValueError(
                f"a {self.kind.value} job runs on a {self.kind.owner.value}, not a {_OWNER_OF[type(self)]}"
            )
        return self


class VoiceJob(PipelineJob):
    voice_id: str

    @property
    def owner_id(self) -> str:
        return self.voice_id


class SpeakerJob(PipelineJob):
    # Executions started before speaker jobs had their own variant carry the id as `voice_id`.
    speaker_id: str = Field(validation_alias=AliasChoices("speaker_id", "voice_id"))

    @property
    def owner_id(self) -> str:
        return self.speaker_id


_OWNER_OF: dict[type[PipelineJob], OwnerType] = {VoiceJob: OwnerType.VOICE, SpeakerJob: OwnerType.SPEAKER}


def _owner_tag(data: Any) -> str | None:
    kind = data.get("kind") if isinstance(data, dict) else getattr(data, "kind", None)
    try:
        return JobKind(kind).owner.value
    except ValueError:
        return None  # pydantic reports the unknown kind


_ANY_JOB: TypeAdapter[PipelineJob] = TypeAdapter(
    Annotated[
        Annotated[VoiceJob, Tag(OwnerType.VOICE.value)] | Annotated[SpeakerJob, Tag(OwnerType.SPEAKER.value)],
        Discriminator(_owner_tag),
    ]
)


class JobDispatcher(Protocol):
    def start(self, job: PipelineJob) -> str:
        """Start the job asynchronously; return an execution reference (an execution ARN)."""
        ...
