"""Speaker use cases and the clone/train_lora GPU job kinds, against moto (no HTTP)."""

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests import audio_factory
from voice_onboarding.domain.errors import InvalidRequest, SpeakerBusy, SpeakerNotReady
from voice_onboarding.domain.jobs import JobKind, SpeakerJob
from voice_onboarding.domain.voice import JobStatus
from voice_onboarding.services import catalog, speaker_dataset, speaker_training, speakers
from voice_onboarding.services.gpu_jobs import CloneJob, GpuJobError, TrainLoraJob
from voice_onboarding.services.job_status import fail_job
from voice_onboarding.services.sweeper import sweep
from voice_onboarding.storage.optimistic import VersionConflict

OWNER = "my-partner"
HYPER = {"rank": 4, "alpha": 8, "learning_rate": 1e-3, "steps": 20, "dropout": 0.0, "seed": 0}
TRAIN_OUTPUT = {
    "tts_type": "kyutai",
    "loss_history": [2.0, 1.0, 0.5],
    "final_loss": 0.5,
    "evaluation": {"speaker_similarity": 0.81, "heldout_loss": 0.7},
    "hyperparameters": HYPER,
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("speaker-clips")
    return {
        "reference": audio_factory.tone(folder / "ref.wav", 12.0),
        "sample": audio_factory.tone(folder / "sample.wav", 13.0, 330),
    }


def _key_of(url: str, bucket: str) -> str:
    path = urlparse(url).path.lstrip("/")
    return path[len(bucket) + 1 :] if path.startswith(bucket + "/") else path


def _create(services, clips, name="aria-custom"):
    return speakers.create_speaker(services, OWNER, name, "en-US", "Sales voice", clips["reference"])


def _ready(services, dispatcher, clips, name="aria-custom"):
    record = _create(services, clips, name)
    job = next(j for j in reversed(dispatcher.jobs) if j.kind == JobKind.CLONE and j.name == name)
    CloneJob.apply_result(services, job, {"tts_type": "kyutai", "embedding_dim": 8, "reference_duration": 12.0})
    return record


def _fill_dataset(services, clips, count=5, name="aria-custom"):
    return [
        speaker_dataset.add_sample(services, OWNER, name, clips["sample"], f"Line number {i}.") for i in range(count)
    ]


def _train_job(dispatcher) -> SpeakerJob:
    return next(j for j in reversed(dispatcher.jobs) if j.kind == JobKind.TRAIN_LORA)


def test_create_stores_reference_and_dispatches_exact_clone_job(services, dispatcher, clips):
    record = _create(services, clips)
    assert dispatcher.jobs == [
        SpeakerJob(
            job_id=dispatcher.jobs[0].job_id,
            kind=JobKind.CLONE,
            partner=OWNER,
            name="aria-custom",
            speaker_id=record.speaker_id,
            params={"tts_type": "kyutai"},
        )
    ]
    assert record.reference_key == f"{OWNER}/speakers/{record.speaker_id}/reference.wav"
    assert services.blobs.get_bytes(record.reference_key) == clips["reference"].read_bytes()
    stored = services.speakers.require(OWNER, "aria-custom")
    assert speakers.speaker_status(stored) == "cloning"


def test_a_failed_hand_off_fails_the_clone_instead_of_leaving_it_running(services, dispatcher, clips):
    dispatcher.fail_with = RuntimeError("state machine unreachable")
    _create(services, clips)
    stored = services.speakers.require(OWNER, "aria-custom")
    assert stored.clone_status == JobStatus.FAILED and "Could not start clone" in stored.clone_error
    speakers.delete_speaker(services, OWNER, "aria-custom")  # not busy: deletable


def test_clone_build_input_presigns_the_contracts_urls(services, dispatcher, clips):
    record = _create(services, clips)
    worker_input = CloneJob.build_input(services, dispatcher.jobs[0])
    bucket = services.settings.bucket_name
    assert worker_input["kind"] == "clone" and worker_input["tts_type"] == "kyutai"
    assert _key_of(worker_input["reference_url"], bucket) == record.reference_key
    conditioning = _key_of(worker_input["outputs"]["voice_conditioning"], bucket)
    assert conditioning == f"{OWNER}/speakers/{record.speaker_id}/conditioning/kyutai.safetensors"


def test_clone_result_makes_the_speaker_ready(services, dispatcher, clips):
    record = _ready(services, dispatcher, clips)
    stored = services.speakers.require(OWNER, "aria-custom")
    assert speakers.speaker_status(stored) == "ready"
    assert stored.conditioning_key == f"{OWNER}/speakers/{record.speaker_id}/conditioning/kyutai.safetensors"
    assert stored.conditioning_info == {"tts_type": "kyutai", "embedding_dim": 8, "reference_duration": 12.0}


def test_clone_failure_records_a_trimmed_reason(services, dispatcher, clips):
    _create(services, clips)
    CloneJob.apply_failure(services, dispatcher.jobs[0], "engine could not load " + "x" * 400)
    stored = services.speakers.require(OWNER, "aria-custom")
    assert speakers.speaker_status(stored) == "failed"
    assert stored.clone_error.startswith("engine could not load") and len(stored.clone_error) == 300


def test_clone_result_is_not_applied_to_a_finished_stage_or_a_namesake(services, dispatcher, clips):
    _create(services, clips)
    job = dispatcher.jobs[0]
    CloneJob.apply_failure(services, job, "timed out")
    CloneJob.apply_result(services, job, {"tts_type": "kyutai", "embedding_dim": 8})  # late result
    assert services.speakers.require(OWNER, "aria-custom").clone_status == JobStatus.FAILED
    speakers.delete_speaker(services, OWNER, "aria-custom")
    _create(services, clips)
    CloneJob.apply_failure(services, job, "an old job's failure")  # job of the deleted namesake
    assert services.speakers.require(OWNER, "aria-custom").clone_status == JobStatus.IN_PROGRESS


def test_clone_result_rejects_a_malformed_output(services, dispatcher, clips):
    _create(services, clips)
    with pytest.raises(GpuJobError, match="invalid clone result"):
        CloneJob.apply_result(services, dispatcher.jobs[0], {"embedding_dim": "many"})


def test_late_clone_upload_after_delete_is_removed(services, dispatcher, clips, all_bucket_keys):
    record = _create(services, clips)
    job = dispatcher.jobs[0]
    services.speakers.update(OWNER, "aria-custom", {"clone_status": JobStatus.FAILED.value})
    speakers.delete_speaker(services, OWNER, "aria-custom")
    services.blobs.put_bytes(f"{OWNER}/speakers/{record.speaker_id}/conditioning/kyutai.safetensors", b"npy")
    CloneJob.apply_result(services, job, {"tts_type": "kyutai", "embedding_dim": 8})
    assert all_bucket_keys() == []


def test_training_snapshot_result_and_versioned_adapter(services, dispatcher, clips):
    record = _ready(services, dispatcher, clips)
    samples = _fill_dataset(services, clips)
    adapter = speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    assert adapter.version == 1 and adapter.dataset_sample_ids == [s.sample_id for s in samples]
    job = _train_job(dispatcher)
    assert (job.partner, job.name, job.speaker_id) == (OWNER, "aria-custom", record.speaker_id)
    assert job.params == {"tts_type": "kyutai", "hyperparameters": HYPER, "adapter_version": 1}
    assert speaker_dataset.summary(services, OWNER, "aria-custom").status == "training"
    # A sample uploaded during training is not part of this run.
    late = speaker_dataset.add_sample(services, OWNER, "aria-custom", clips["sample"], "Late line.")
    worker_input = TrainLoraJob.build_input(services, job)
    bucket = services.settings.bucket_name
    assert [d["transcript"] for d in worker_input["dataset"]] == [f"Line number {i}." for i in range(5)]
    assert {_key_of(d["url"], bucket) for d in worker_input["dataset"]} == {s.object_key for s in samples}
    assert worker_input["hyperparameters"] == HYPER
    prefix = f"{OWNER}/speakers/{record.speaker_id}/adapters/v1/"
    assert _key_of(worker_input["outputs"]["adapter"], bucket) == prefix + "adapter.zip"
    assert _key_of(worker_input["outputs"]["evaluation_audio"], bucket) == prefix + "evaluation.opus"

    TrainLoraJob.apply_result(services, job, TRAIN_OUTPUT)
    [stored] = services.speakers.list_adapters(OWNER, "aria-custom")
    assert stored.status == JobStatus.COMPLETED and stored.final_loss == 0.5
    assert stored.evaluation == TRAIN_OUTPUT["evaluation"] and stored.hyperparameters == HYPER
    assert stored.adapter_key == prefix + "adapter.zip"
    metadata = json.loads(services.blobs.get_bytes(prefix + "metadata.json"))
    assert metadata["hyperparameters"] == HYPER and metadata["evaluation"]["speaker_similarity"] == 0.81
    assert services.speakers.require(OWNER, "aria-custom").training_status == JobStatus.COMPLETED
    # The late sample is not in the trained set: ready for another run, not "trained".
    assert speaker_dataset.summary(services, OWNER, "aria-custom").status == "ready"
    speaker_dataset.clear(services, OWNER, "aria-custom")
    _fill_dataset(services, clips)
    assert late.sample_id not in {s.sample_id for s in services.speakers.list_samples(OWNER, "aria-custom")}


def test_trained_status_and_failed_runs_keep_their_version(services, dispatcher, clips):
    _ready(services, dispatcher, clips)
    _fill_dataset(services, clips)
    speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    TrainLoraJob.apply_failure(services, _train_job(dispatcher), "CUDA out of memory")
    speaker = services.speakers.require(OWNER, "aria-custom")
    assert (speaker.training_status, speaker.training_error) == (JobStatus.FAILED, "CUDA out of memory")
    assert speaker_dataset.summary(services, OWNER, "aria-custom").status == "ready"
    second = speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    assert second.version == 2
    TrainLoraJob.apply_result(services, _train_job(dispatcher), TRAIN_OUTPUT)
    versions = [(a.version, a.status, a.error) for a in speaker_training.list_adapters(services, OWNER, "aria-custom")]
    assert versions == [(1, JobStatus.FAILED, "CUDA out of memory"), (2, JobStatus.COMPLETED, None)]
    assert speaker_dataset.summary(services, OWNER, "aria-custom").status == "trained"


def test_training_needs_a_ready_dataset_and_an_idle_speaker(services, dispatcher, clips):
    _create(services, clips)
    with pytest.raises(SpeakerBusy):  # still cloning
        speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    CloneJob.apply_result(services, dispatcher.jobs[0], {"tts_type": "kyutai", "embedding_dim": 8})
    _fill_dataset(services, clips, count=4)
    assert speaker_dataset.summary(services, OWNER, "aria-custom").status == "collecting"
    with pytest.raises(Exception, match="need at least 5 samples"):
        speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    _fill_dataset(services, clips, count=1)
    speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    with pytest.raises(SpeakerBusy):
        speaker_training.start_training(services, OWNER, "aria-custom", HYPER)


def test_clear_is_refused_while_training_and_invalidates_a_stale_start(services, dispatcher, clips):
    _ready(services, dispatcher, clips)
    _fill_dataset(services, clips)
    seen = services.speakers.require(OWNER, "aria-custom")
    speaker_dataset.clear(services, OWNER, "aria-custom")
    # A start that read the speaker before the clear cannot win its conditional write: it is told
    # the speaker changed (a race to retry from a fresh read, not a 409) ...
    adapter = speaker_training.AdapterVersion(
        version=1, status=JobStatus.IN_PROGRESS, tts_type="kyutai", hyperparameters=HYPER, created_at="x"
    )
    with pytest.raises(VersionConflict):
        services.speakers.begin_training(OWNER, "aria-custom", seen.version, adapter)
    # ... and the retry sees the emptied dataset.
    with pytest.raises(InvalidRequest, match="Dataset not ready"):
        speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    _fill_dataset(services, clips)
    speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    with pytest.raises(SpeakerBusy):
        speaker_dataset.clear(services, OWNER, "aria-custom")
    assert len(services.speakers.list_samples(OWNER, "aria-custom")) == 5


def test_pipeline_failure_handler_and_sweeper_release_a_training(services, dispatcher, clips):
    _ready(services, dispatcher, clips)
    _fill_dataset(services, clips)
    speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    reason = fail_job(services, _train_job(dispatcher), {"Error": "GpuJobFailed", "Cause": "dataset audio unreadable"})
    assert reason == "dataset audio unreadable"
    [adapter] = speaker_training.list_adapters(services, OWNER, "aria-custom")
    assert (adapter.status, adapter.error) == (JobStatus.FAILED, reason)
    # A run the sweeper fails (no writes to the adapter item) is shown failed too.
    speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    services.clock = lambda: 4_000_000_000.0
    assert any(f.endswith(":training") for f in sweep(services))
    second = speaker_training.list_adapters(services, OWNER, "aria-custom")[1]
    assert second.status == JobStatus.FAILED and "Timed out" in second.error


def test_deploy_needs_ready_keeps_uuid_and_undeploy_keeps_speaker(services, dispatcher, clips):
    _create(services, clips)
    with pytest.raises(SpeakerNotReady):
        catalog.deploy(services, OWNER, "aria-custom")
    CloneJob.apply_result(services, dispatcher.jobs[0], {"tts_type": "kyutai", "embedding_dim": 8})
    first = catalog.deploy(services, OWNER, "aria-custom")
    assert first.deployed and first.voice_sample_uuid.startswith("vs_")
    assert catalog.deploy(services, OWNER, "aria-custom").voice_sample_uuid == first.voice_sample_uuid
    assert [e.voice_sample_uuid for e in catalog.list_catalog(services)] == [first.voice_sample_uuid]
    _fill_dataset(services, clips, count=1)
    undeployed = catalog.undeploy(services, OWNER, "aria-custom")
    assert not undeployed.deployed and undeployed.voice_sample_uuid == first.voice_sample_uuid
    assert catalog.list_catalog(services) == []
    assert len(services.speakers.list_samples(OWNER, "aria-custom")) == 1
    assert catalog.deploy(services, OWNER, "aria-custom").voice_sample_uuid == first.voice_sample_uuid


def test_delete_leaves_no_item_and_no_object(services, dispatcher, clips, all_bucket_keys):
    record = _ready(services, dispatcher, clips)
    _ready(services, dispatcher, clips, name="aria")  # a prefix namesake that must survive
    _fill_dataset(services, clips)
    speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    prefix = f"{OWNER}/speakers/{record.speaker_id}/"
    services.blobs.put_bytes(prefix + "conditioning/kyutai.safetensors", b"npy")
    services.blobs.put_bytes(prefix + "adapters/v1/adapter.zip", b"zip")
    TrainLoraJob.apply_result(services, _train_job(dispatcher), TRAIN_OUTPUT)
    catalog.deploy(services, OWNER, "aria-custom")
    assert len([k for k in all_bucket_keys() if k.startswith(prefix)]) == 9

    speakers.delete_speaker(services, OWNER, "aria-custom")

    assert [k for k in all_bucket_keys() if k.startswith(prefix)] == []
    items = services.dynamodb.scan(TableName=services.settings.table_name)["Items"]
    left = sorted(i["SK"]["S"] for i in items if i["entity"]["S"] not in ("api_key", "rate_limit"))
    assert left == ["SPEAKER#aria"]
    assert catalog.list_catalog(services) == []


def test_delete_is_refused_while_a_job_runs(services, dispatcher, clips, all_bucket_keys):
    _create(services, clips)
    with pytest.raises(SpeakerBusy):
        speakers.delete_speaker(services, OWNER, "aria-custom")
    assert services.speakers.get(OWNER, "aria-custom") is not None and len(all_bucket_keys()) == 1


def test_catalog_entry_names_the_engine_and_the_deployed_adapter_version(services, dispatcher, clips):
    _ready(services, dispatcher, clips)
    catalog.deploy(services, OWNER, "aria-custom")
    [entry] = catalog.list_catalog(services)
    assert (entry.tts_type, entry.adapter_version) == ("kyutai", None)  # the zero-shot clone alone
    _fill_dataset(services, clips)
    speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    TrainLoraJob.apply_failure(services, _train_job(dispatcher), "CUDA out of memory")
    speaker_training.start_training(services, OWNER, "aria-custom", HYPER)
    TrainLoraJob.apply_result(services, _train_job(dispatcher), TRAIN_OUTPUT)
    speaker_training.start_training(services, OWNER, "aria-custom", HYPER)  # v3 still running
    assert catalog.list_catalog(services)[0].adapter_version is None  # published at deploy, not on training
    catalog.deploy(services, OWNER, "aria-custom")
    [entry] = catalog.list_catalog(services)
    assert (entry.tts_type, entry.adapter_version) == ("kyutai", 2)  # the latest *completed* version
