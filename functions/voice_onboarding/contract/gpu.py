"""The GPU worker's job kinds: input and result models, one pair per kind, and `KINDS`, the table of kinds
(docs/pipeline-contract.md, "GPU worker").

The dispatcher builds the inputs (`services/gpu_jobs`), the worker validates them (`gpu_worker/handler.py`)
and returns the results; both sides import these models. A new kind is one `GpuKind` entry in `KINDS`
(docs/architecture.md, "Adding a GPU job kind"): the Lambdas' stages and the worker's task table derive from it.
"""

import operator
import re
from dataclasses import dataclass
from functools import reduce
from typing import Annotated, Any, Literal, get_args

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from voice_onboarding.contract.engines import DEFAULT_TTS_TYPE

# AnyHttpUrl, not HttpUrl: a URL presigned with a role's session token can exceed HttpUrl's 2083 chars.
Url = Annotated[AnyHttpUrl, Field(description="presigned S3 URL")]
# An input may also come inline as a base64 data: URL (gpu_worker/test_input.json and .runpod/tests.json run
# with no bucket). An output set to null is not uploaded (the result still says what was produced).
DataUrl = Annotated[str, StringConstraints(pattern=r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,[A-Za-z0-9+/=]+$")]
InputUrl = Url | DataUrl
OutputUrl = Url | None


class _Model(BaseModel):
    # Validators built on first use, not at import: the API Lambda imports this module for its job table
    # and validates none of these on most requests (its cold start; behaviour is BaseModel's).
    model_config = ConfigDict(defer_build=True)


class _Strict(_Model):
    # Unknown keys are a dispatcher bug; fail loudly instead of ignoring them.
    model_config = ConfigDict(extra="forbid")


def test_filename(sample_index: int, sentence_index: int) -> str:
    """Name of the test sample speaking sentence `sentence_index` (1-based) in the voice of a sample."""
    return f"test_{sample_index}_{sentence_index}.opus"


test_filename.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported by one
_TEST_FILENAME = re.compile(r"^test_(\d+)_(\d+)\.\w+$")


def parse_test_filename(filename: str) -> tuple[int, int] | None:
    """(sample_index, sentence_index) of a test_filename(); None for any other name."""
    match = _TEST_FILENAME.match(filename)
    return (int(match.group(1)), int(match.group(2))) if match else None


class WorkerCallback(_Strict):
    """The API routes a worker calls while it runs, authenticated by the job's secret (`token`, sent as
    `Authorization: Bearer`): `{url}/progress` reports a step and is the run's heartbeat (send one at
    least every `heartbeat_seconds`), `{url}/upload-url` signs a fresh PUT URL for one of the job's
    outputs at upload time (an output URL in the input may have died with the session that signed it)."""

    url: AnyHttpUrl
    token: str = Field(min_length=16, max_length=200)
    heartbeat_seconds: int = Field(ge=1)


def output_name(field: str, item: str | None = None) -> str:
    """How the worker names an output when it asks for its upload URL: the outputs field, or
    `field/item` for an entry of a dict of outputs (`test_samples/test_1_1.opus`)."""
    return f"{field}/{item}" if item is not None else field


class GpuJobInput(_Strict):
    """What every kind's input has besides its own fields (each kind adds `kind: Literal[...]` and `outputs`)."""

    # None: no API to call back (smoke tests, a stack without PUBLIC_API_URL).
    callback: WorkerCallback | None = None


class SampleIn(_Strict):
    index: int
    url: InputUrl
    # The splitter's quality report (contract/quality.py names the thresholds); None for uploads.
    quality: dict[str, Any] | None = None


class EmbedOutputs(_Strict):
    test_samples: dict[str, Url] = Field(default_factory=dict)
    embedding_zip: OutputUrl


class EmbedInput(GpuJobInput):
    kind: Literal["embed"]
    tts_type: str = DEFAULT_TTS_TYPE
    # BCP-47 of the voice or speaker (None: English). Engines with one model per language pick it with this.
    language: str | None = None
    samples: list[SampleIn] = Field(min_length=1)
    sentences: list[str] = Field(default_factory=list)
    outputs: EmbedOutputs


class CloneOutputs(_Strict):
    voice_conditioning: OutputUrl


class CloneInput(GpuJobInput):
    kind: Literal["clone"]
    tts_type: str = DEFAULT_TTS_TYPE
    # BCP-47 of the voice or speaker (None: English). Engines with one model per language pick it with this.
    language: str | None = None
    reference_url: InputUrl
    outputs: CloneOutputs


class DatasetItem(_Strict):
    url: InputUrl
    transcript: str = Field(min_length=1)


class LoraHyperparameters(_Model):
    model_config = ConfigDict(extra="ignore")
    rank: int = Field(8, ge=1, le=256)
    alpha: int = Field(16, ge=1)
    learning_rate: float = Field(1e-3, gt=0, le=1)
    steps: int = Field(100, ge=1, le=100_000)
    dropout: float = Field(0.0, ge=0, lt=1)
    seed: int = 0


class TrainOutputs(_Strict):
    adapter: OutputUrl
    evaluation_audio: Url | None = None


class TrainLoraInput(GpuJobInput):
    kind: Literal["train_lora"]
    tts_type: str = DEFAULT_TTS_TYPE
    dataset: list[DatasetItem] = Field(min_length=1)
    hyperparameters: LoraHyperparameters = Field(default_factory=LoraHyperparameters)
    outputs: TrainOutputs

    @field_validator("hyperparameters", mode="before")
    @classmethod
    def _defaults_when_null(cls, value: Any) -> Any:
        # The dispatcher sends null when neither the request nor the adapter named any.
        return {} if value is None else value


# Results: the worker builds them, the Lambdas parse them (services/gpu_jobs). The worker image and the
# Lambdas deploy apart, so a result is read leniently: unknown keys are ignored, and a field the Lambdas do
# not record has a default, so a worker one release apart still parses. A field they record is required.


class SampleScore(_Model):
    sample_index: int
    score: float
    similarity: float | None = None
    # Engines that speak: cosine of the sample's test samples (spoken from its stored artifact) vs the sample.
    synthesis_similarity: float | None = None
    flagged: bool = False
    reason: str | None = None


class TestSampleOut(_Model):
    __test__ = False  # not a pytest test class

    sample_index: int
    sentence_index: int
    filename: str


class EmbedResult(_Model):
    tts_type: str
    sample_scores: list[SampleScore] = Field(min_length=1)  # one per input sample, and there is at least one
    test_samples: list[TestSampleOut] = Field(default_factory=list)
    preferred_sample_index: int | None  # None when every sample is flagged: a flagged one is never preferred
    embedding_dim: int | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    note: str | None = None


class CloneResult(_Model):
    tts_type: str
    embedding_dim: int
    reference_duration: float | None = None


class TrainLoraResult(_Model):
    tts_type: str | None = None  # None: the engine the job asked for
    loss_history: list[float] = Field(default_factory=list)
    final_loss: float
    evaluation: dict[str, Any] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] | None = None  # None: the ones the job sent


@dataclass(frozen=True)
class GpuKind:
    """One job kind of the worker: all either side needs to know of it.

    `stage` and `owner` say where the Lambdas record the kind's state: `{stage}_status` and `{stage}_error`
    on the voice or speaker (domain/jobs.py `Stage`). The worker ignores both."""

    input: type[BaseModel]  # its `kind: Literal[...]` field names the kind
    result: type[BaseModel]
    # Of one run after submission, queue time included (a cold start pulls a large image): the poll
    # cancels a run past it, the presigned URLs and RunPod's own policy are sized from it.
    deadline_seconds: int
    stage: str
    owner: Literal["voice", "speaker"]

    @property
    def name(self) -> str:
        return str(get_args(self.input.model_fields["kind"].annotation)[0])


KINDS: dict[str, GpuKind] = {
    kind.name: kind
    for kind in (
        GpuKind(EmbedInput, EmbedResult, 45 * 60, stage="embedding", owner="voice"),
        GpuKind(CloneInput, CloneResult, 20 * 60, stage="clone", owner="speaker"),
        GpuKind(TrainLoraInput, TrainLoraResult, 3 * 3600, stage="training", owner="speaker"),
    )
}

# Any kind's input, told apart by `kind` (what the worker validates a job's `input` with).
JobInput = Annotated[reduce(operator.or_, (kind.input for kind in KINDS.values())), Field(discriminator="kind")]
