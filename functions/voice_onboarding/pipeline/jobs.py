"""Pipeline job descriptions: what the API hands to Step Functions (or the local runner)."""

import uuid
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field


class JobKind(StrEnum):
    SPLIT_AND_EMBED = "split_and_embed"  # a new voice with audio: split, then embed
    SPLIT = "split"
    EMBED = "embed"
    CLONE = "clone"  # zero-shot speaker from a reference clip
    TRAIN_LORA = "train_lora"


class PipelineJob(BaseModel):
    """The execution input. Every state of the state machine reads its fields from here."""

    job_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    kind: JobKind
    partner: str
    # Voice name for voice jobs, speaker name for speaker jobs; voice_id addresses S3.
    name: str
    voice_id: str
    params: dict[str, Any] = Field(default_factory=dict)


class JobDispatcher(Protocol):
    def start(self, job: PipelineJob) -> str:
        """Start the job asynchronously; return an execution reference (ARN or local id)."""
        ...
