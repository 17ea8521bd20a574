"""Request/response models of speakers-api.txt, field for field, plus the train/adapters/catalog extras."""

from typing import Any

from pydantic import ConfigDict, Field

from voice_onboarding.contract.engines import DEFAULT_TTS_TYPE
from voice_onboarding.domain.model import Model
from voice_onboarding.domain.speaker import AdapterVersion


class SpeakerSummary(Model):
    name: str = Field(examples=["aria-custom"])
    language: str = Field(examples=["en-US"])
    description: str | None = Field(default=None, examples=["Custom US English sales voice"])
    deployed: bool
    voice_sample_uuid: str | None = Field(default=None, examples=["vs_x1y2z3"])
    created_at: str = Field(examples=["2026-05-01T00:00:00Z"])


class SpeakerCreated(Model):
    name: str
    language: str
    status: str = Field(examples=["created"])
    message: str = Field(examples=["Speaker created. Upload dataset samples and deploy to use in flows."])


class AdapterInfo(Model):
    version: int
    status: str = Field(description="in_progress | completed | failed")
    tts_type: str
    hyperparameters: dict[str, Any]
    created_at: str
    updated_at: str | None = None
    dataset_sample_count: int
    dataset_duration_seconds: float
    final_loss: float | None = None
    loss_history: list[float] | None = None
    evaluation: dict[str, Any] | None = Field(default=None, examples=[{"speaker_similarity": 0.83}])
    error: str | None = None

    @classmethod
    def of(cls, adapter: AdapterVersion) -> "AdapterInfo":
        return cls(
            **adapter.model_dump(mode="json", exclude={"dataset_sample_ids", "adapter_key", "metadata_key"}),
            dataset_sample_count=len(adapter.dataset_sample_ids),
        )


class SpeakerDetails(SpeakerSummary):
    """The list item plus the clone job's state, the training state and the adapter versions."""

    status: str = Field(description="created | cloning | ready | failed (the zero-shot clone job)")
    status_reason: str | None = Field(default=None, description="Why the clone failed")
    reference_duration_seconds: float
    tts_type: str
    training_status: str = Field(description="idle | in_progress | completed | failed (the latest LoRA run)")
    training_reason: str | None = None
    progress: dict[str, Any] | None = Field(default=None, description="The running GPU job's last step")
    adapters: list[AdapterInfo] = Field(default_factory=list)


class DatasetInfo(Model):
    name: str
    sample_count: int
    total_duration_seconds: float
    status: str = Field(
        description=(
            "empty (no samples) | collecting (fewer than 5 samples or under 60 s in total) | ready | "
            "training (a train_lora job runs) | trained (the latest adapter used exactly these samples)"
        )
    )


class DatasetSampleCreated(Model):
    sample_id: str = Field(examples=["smp_s1t2u3"])
    duration_seconds: float
    transcript: str


class DeployResult(Model):
    name: str
    deployed: bool
    voice_sample_uuid: str | None = Field(default=None, examples=["vs_x1y2z3"])


class TrainRequest(Model):
    """LoRA hyperparameters; every field has a default, so an empty body trains with the defaults."""

    model_config = ConfigDict(extra="forbid")
    rank: int = Field(default=8, ge=1, le=128, description="LoRA rank")
    alpha: int = Field(default=16, ge=1, le=512, description="LoRA scaling (alpha / rank)")
    learning_rate: float = Field(default=1e-3, gt=0, le=0.1)
    # Bounded so one run fits the 3 h GPU deadline of train_lora jobs.
    steps: int = Field(default=200, ge=1, le=20_000)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class TrainAccepted(Model):
    name: str
    adapter_version: int
    status: str = Field(examples=["in_progress"])
    hyperparameters: dict[str, Any]


class CatalogVoice(Model):
    voice_sample_uuid: str
    name: str
    language: str
    description: str | None = None
    deployed_at: str
    tts_type: str | None = Field(
        default=None, description="The engine that speaks this voice", examples=[DEFAULT_TTS_TYPE]
    )
    adapter_version: int | None = Field(
        default=None,
        description="LoRA adapter version synthesis uses (the latest completed at deploy); null: zero-shot clone",
        examples=[2],
    )
