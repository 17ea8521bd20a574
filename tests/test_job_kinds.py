"""Adding a GPU job kind (docs/architecture.md) takes a contract entry, a job class and a worker task. Each
kind of the contract has all three, and the stage it derives has its status on its owner's record; a
missing piece fails here with its name and the file it goes in. Also: the two job variants (voice, speaker)."""

import ast
import importlib.util
import json
from pathlib import Path

import pytest
from gpu_worker.handler import TASKS
from infra.cfn_template import REPO_ROOT
from pydantic import ValidationError

from voice_onboarding.contract.gpu import KINDS, GpuJobInput, GpuKind
from voice_onboarding.domain.jobs import JobKind, OwnerType, PipelineJob, SpeakerJob, Stage, VoiceJob
from voice_onboarding.domain.speaker import SpeakerRecord
from voice_onboarding.domain.voice import VoiceRecord
from voice_onboarding.services import gpu_jobs

RECORDS = {OwnerType.VOICE: VoiceRecord, OwnerType.SPEAKER: SpeakerRecord}
ASL = json.loads((REPO_ROOT / "infra/statemachine/voice_pipeline.asl.json").read_text())


def _has_run(module: str) -> bool:
    """The worker task module exists and defines run() (read, not imported: tasks import torch)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return False
    tree = ast.parse(Path(spec.origin).read_text())
    return any(isinstance(node, ast.FunctionDef) and node.name == "run" for node in tree.body)


def missing_pieces(kinds: dict[str, GpuKind], classes: dict[str, type], tasks: dict[str, str]) -> list[str]:
    missing = []
    for kind in kinds:
        if kind not in classes:
            missing.append(f"GPU kind {kind!r}: no GpuJobKind class registered in services/gpu_jobs/__init__.py KINDS")
        if kind not in tasks or not _has_run(tasks[kind]):
            missing.append(f"GPU kind {kind!r}: no worker task gpu_worker/tasks/{kind}.py with run(input, progress)")
    missing += [f"GPU kind {k!r}: its input model is not a GpuJobInput (contract/gpu.py)" for k, kind in kinds.items()
                if not issubclass(kind.input, GpuJobInput)]  # fmt: skip
    missing += [f"job class {c.__name__}: its kind {k!r} is not in contract/gpu.py KINDS" for k, c in classes.items()
                if k not in kinds]  # fmt: skip
    return missing


def test_every_contract_kind_has_a_job_class_and_a_worker_task() -> None:
    assert missing_pieces(KINDS, gpu_jobs.KINDS, TASKS) == []


def test_a_missing_piece_is_named() -> None:
    unbuilt = GpuKind(KINDS["clone"].input, KINDS["clone"].result, 60, stage="unbuilt", owner="voice")
    kinds = {**KINDS, "unbuilt": unbuilt}
    assert missing_pieces(kinds, gpu_jobs.KINDS, {**TASKS, "unbuilt": "gpu_worker.tasks.unbuilt"}) == [
        "GPU kind 'unbuilt': no GpuJobKind class registered in services/gpu_jobs/__init__.py KINDS",
        "GPU kind 'unbuilt': no worker task gpu_worker/tasks/unbuilt.py with run(input, progress)",
    ]


@pytest.mark.parametrize("stage", list(Stage), ids=str)
def test_every_stage_has_its_status_and_error_on_its_owners_record(stage: Stage) -> None:
    record = RECORDS[stage.owner]
    fields = record.model_fields
    missing = [f for f in (stage.status_field, stage.error_field) if f not in fields]
    assert not missing, f"stage {stage.value!r}: {record.__name__} has no field {', '.join(missing)}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_gpu_kind_is_a_job_kind_of_one_stage_with_the_contracts_deadline(kind: str) -> None:
    stage = Stage.of_gpu_kind(kind)
    assert JobKind(kind).stages == (stage,)
    assert stage.timeout_seconds == KINDS[kind].deadline_seconds == gpu_jobs.get_kind(kind).timeout_seconds()
    assert stage.owner == OwnerType(KINDS[kind].owner) == JobKind(kind).owner


def test_the_state_machine_runs_any_gpu_kind_as_its_own_stage() -> None:
    """RouteByKind names only the split kinds: a new GPU kind needs no state machine change."""
    route = ASL["States"]["RouteByKind"]
    named = {rule["StringEquals"] for choice in route["Choices"] for rule in choice.get("Or", [choice])}
    assert named == {kind.value for kind in JobKind if Stage.SPLITTING in kind.stages}
    assert route["Default"] == "StageFromKind"


def test_a_speaker_job_carries_a_speaker_id_and_a_voice_job_a_voice_id() -> None:
    speaker = SpeakerJob(kind=JobKind.CLONE, partner="p", name="aria", speaker_id="sid-1")
    voice = VoiceJob(kind=JobKind.SPLIT, partner="p", name="v", voice_id="vid-1")
    assert "voice_id" not in speaker.model_dump(mode="json") and speaker.owner_id == "sid-1"
    assert "speaker_id" not in voice.model_dump(mode="json") and voice.owner_id == "vid-1"
    # What the state machine hands back parses as the same variant.
    assert PipelineJob.model_validate(speaker.model_dump(mode="json")) == speaker
    assert PipelineJob.model_validate(voice.model_dump(mode="json")) == voice
    assert PipelineJob.model_validate_json(speaker.model_dump_json()) == speaker


def test_an_execution_started_before_the_variants_still_parses() -> None:
    """Its speaker job carried the speaker id as `voice_id` (executions run for hours across a deploy)."""
    job = PipelineJob.model_validate({"job_id": "j", "kind": "clone", "partner": "p", "name": "a", "voice_id": "sid"})
    assert isinstance(job, SpeakerJob) and job.speaker_id == "sid"


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "clone", "partner": "p", "name": "a"},  # no owner id
        {"kind": "split", "partner": "p", "name": "v", "speaker_id": "sid"},  # a voice kind needs a voice_id
        {"kind": "no_such_kind", "partner": "p", "name": "v", "voice_id": "vid"},  # no such kind
    ],
)
def test_a_malformed_job_is_refused(data: dict) -> None:
    with pytest.raises(ValidationError):
        PipelineJob.model_validate(data)


def test_a_job_of_the_other_owners_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="a clone job runs on a speaker, not a voice"):
        VoiceJob(kind=JobKind.CLONE, partner="p", name="a", voice_id="vid")
