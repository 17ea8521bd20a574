"""The embedded stack's storage survives `kill -9` (a real subprocess of `python -m infra.local_stack`),
snapshots are never torn, S3 is mirrored incrementally, and interrupted jobs are resumed (or, without a
journaled input, failed) on restart."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from infra.local.persistence import MANIFEST_FILE, TABLE_FILE, LocalPersistence, is_write_request, write_atomically
from infra.local.ports import free_port
from infra.local.recovery import (
    INTERRUPTED_REASON,
    JOURNAL_FILE,
    ExecutionJournal,
    fail_interrupted_jobs,
    resume_interrupted_jobs,
    resumed_job,
    sweeper_interval_seconds,
)
from infra.local_stack import DEFAULT_DEV_KEY
from infra.provisioning import provision

from voice_onboarding.domain.jobs import JobKind, SpeakerJob, Stage, VoiceJob

REPO = Path(__file__).resolve().parents[2]
PARTNER = "my-partner"


class Stack:
    """`python -m infra.local_stack` in a child process, on free ports, with its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self) -> None:
        self.port, self.moto_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "TABLE_", "BUCKET_"))}
        env.update(PYTHONPATH=f"{REPO / 'functions'}:{REPO}", POWERTOOLS_LOG_LEVEL="WARNING")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.local_stack", "--port", str(self.port), "--moto-port", str(self.moto_port),
             "--data-dir", str(self.data_dir)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        deadline = time.monotonic() + 120
        for line in self.process.stdout:
            self.output += line
            if "Example:" in line:
                break
            assert time.monotonic() < deadline, self.output
        else:
            raise AssertionError(f"stack exited:\n{self.output}")
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}/api", headers={"X-Api-Key": DEFAULT_DEV_KEY}, timeout=30
        )
        while True:  # the banner comes just before uvicorn listens
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                assert time.monotonic() < deadline and self.process.poll() is None, self.output
                time.sleep(0.1)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.api.close()

    def dynamodb(self) -> Any:
        return boto3.client(
            "dynamodb", endpoint_url=f"http://127.0.0.1:{self.moto_port}", region_name="us-east-1",
            aws_access_key_id="local", aws_secret_access_key="local",
        )  # fmt: skip


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path / "data")
    yield running
    if running.process and running.process.poll() is None:
        running.kill9()


@pytest.mark.slow
def test_voices_created_two_seconds_before_kill_9_are_there_after_restart(stack: Stack) -> None:
    stack.start()
    for name in ("alpha", "beta", "gamma"):
        assert stack.api.post(f"/voices/{PARTNER}/empty", data={"name": name}).status_code == 201
    sample = stack.api.post(
        f"/voices/{PARTNER}/alpha/samples", files={"file": ("a.wav", _wav(), "audio/wav")}
    )  # an S3 object too
    assert sample.status_code == 201, sample.text
    # A job that the dying process leaves in progress.
    db = stack.dynamodb()
    db.update_item(
        TableName="voice-onboarding-local",
        Key={"PK": {"S": f"TENANT#{PARTNER}"}, "SK": {"S": "VOICE#beta"}},
        UpdateExpression="SET embedding_status = :ip",
        ExpressionAttributeValues={":ip": {"S": "in_progress"}},
    )
    time.sleep(2)
    stack.kill9()

    stack.start()
    assert "1 interrupted job(s) failed" in stack.output, stack.output
    voices = {v["name"]: v for v in stack.api.get(f"/voices/{PARTNER}").json()}
    assert set(voices) == {"alpha", "beta", "gamma"}
    beta = stack.api.get(f"/voices/{PARTNER}/beta").json()
    assert beta["status"] == {"splitting": "idle", "embedding": "failed"}, beta
    assert beta["status_reasons"]["embedding"] == INTERRUPTED_REASON
    downloaded = stack.api.get(f"/voices/{PARTNER}/alpha/samples/1")
    assert downloaded.status_code == 200 and downloaded.content[:4] == b"OggS"


@pytest.mark.slow
def test_a_job_running_at_kill_9_is_resumed_and_completes_after_restart(
    stack: Stack, espeak_ng: None, tmp_path: Path
) -> None:
    pytest.importorskip("resemblyzer")
    from tests import audio_factory

    stack.start()
    assert stack.api.post(f"/voices/{PARTNER}/empty", data={"name": "resumed"}).status_code == 201
    for index, text in enumerate(("The quick brown fox jumps over the lazy dog.", "She sells sea shells.")):
        speech = audio_factory.speech(tmp_path / f"{index}.wav", text).read_bytes()
        sample = stack.api.post(f"/voices/{PARTNER}/resumed/samples", files={"file": ("a.wav", speech, "audio/wav")})
        assert sample.status_code == 201, sample.text
    accepted = stack.api.post(f"/voices/{PARTNER}/resumed/embed")
    assert accepted.status_code == 202, accepted.text
    # Killed once the in_progress state is saved (flushes every 0.5 s), while the process' first GPU job
    # still loads its engine (importing torch alone takes seconds).
    time.sleep(1.0)
    stack.kill9()

    stack.start()
    assert "1 interrupted job(s) resumed, 0 interrupted job(s) failed" in stack.output, stack.output
    deadline = time.monotonic() + 180
    while (voice := stack.api.get(f"/voices/{PARTNER}/resumed").json())["status"]["embedding"] == "in_progress":
        assert time.monotonic() < deadline, voice
        time.sleep(1)
    assert voice["status"]["embedding"] == "completed", voice["status_reasons"]
    assert len(voice["embedding_info"]["sample_scores"]) == 2


def _wav() -> bytes:
    from tests import audio_factory

    path = audio_factory.tone(Path(os.environ.get("TMPDIR", "/tmp")) / f"persist-{os.getpid()}.wav", 2.0)
    try:
        return path.read_bytes()
    finally:
        path.unlink()


def test_write_atomically_never_leaves_a_torn_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "table.json"
    write_atomically(target, b"old snapshot")

    def crash(*_: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(target, iter([b"new ", b"snapshot"]))
    assert target.read_bytes() == b"old snapshot"  # the previous snapshot, whole


def test_only_writes_mark_the_store_dirty() -> None:
    assert not is_write_request({"REQUEST_METHOD": "GET"})
    assert not is_write_request({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Query"})
    assert not is_write_request({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.DescribeTable"})
    assert is_write_request({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.TransactWriteItems"})
    assert is_write_request({"REQUEST_METHOD": "PUT"})  # S3 put
    assert is_write_request({"REQUEST_METHOD": "POST"})  # S3 presigned POST, multi-delete


def test_s3_is_mirrored_incrementally_with_metadata(aws: None, tmp_path: Path) -> None:
    db, s3 = boto3.client("dynamodb"), boto3.client("s3")
    provision(db, s3, "t", "bucket-b")
    persistence = LocalPersistence(tmp_path, db, s3, "t", "bucket-b")
    s3.put_object(Bucket="bucket-b", Key="p/v/a.opus", Body=b"a" * 10, ContentType="audio/ogg", Metadata={"x": "1"})
    s3.put_object(Bucket="bucket-b", Key="p/v/b.opus", Body=b"b" * 10, ContentDisposition='attachment; filename="b"')
    persistence.flush()
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "objects").rglob("*") if p.is_file()}
    assert len(files) == 2

    time.sleep(0.01)
    s3.put_object(Bucket="bucket-b", Key="p/v/c.opus", Body=b"c" * 10)
    s3.delete_object(Bucket="bucket-b", Key="p/v/b.opus")
    persistence.flush()
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "objects").rglob("*") if p.is_file()}
    unchanged = [p for p in files if after.get(p) == files[p]]
    assert len(unchanged) == 1 and len(after) == 2  # a.opus untouched, b.opus gone, c.opus new
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert set(manifest) == {"p/v/a.opus", "p/v/c.opus"}

    # A fresh storage restored from the directory has the same objects and metadata.
    for key in ("p/v/a.opus", "p/v/c.opus"):
        s3.delete_object(Bucket="bucket-b", Key=key)
    restored = LocalPersistence(tmp_path, db, s3, "t", "bucket-b")
    restored.restore()
    got = s3.get_object(Bucket="bucket-b", Key="p/v/a.opus")
    assert got["Body"].read() == b"a" * 10 and got["ContentType"] == "audio/ogg" and got["Metadata"] == {"x": "1"}
    assert (tmp_path / TABLE_FILE).exists()


def test_interrupted_jobs_fail_with_a_reason_and_others_stay(aws: None) -> None:
    db, s3 = boto3.client("dynamodb"), boto3.client("s3")
    provision(db, s3, "t", "bucket-b")
    items = [
        {"PK": {"S": "TENANT#p"}, "SK": {"S": "VOICE#a"}, "entity": {"S": "voice"},
         "splitting_status": {"S": "in_progress"}, "embedding_status": {"S": "completed"}, "progress": {"M": {}}},
        {"PK": {"S": "TENANT#p"}, "SK": {"S": "SPEAKER#s"}, "entity": {"S": "speaker"},
         "training_status": {"S": "in_progress"}, "version": {"N": "4"}},
        {"PK": {"S": "TENANT#p"}, "SK": {"S": "VOICE#b"}, "entity": {"S": "voice"},
         "splitting_status": {"S": "completed"}},
    ]  # fmt: skip
    for item in items:
        db.put_item(TableName="t", Item=item)
    failed = fail_interrupted_jobs(db, "t")
    assert sorted(failed) == ["TENANT#p/SPEAKER#s:training", "TENANT#p/VOICE#a:splitting"]
    voice = db.get_item(TableName="t", Key={"PK": {"S": "TENANT#p"}, "SK": {"S": "VOICE#a"}})["Item"]
    assert voice["splitting_status"] == {"S": "failed"} and voice["splitting_error"] == {"S": INTERRUPTED_REASON}
    assert voice["embedding_status"] == {"S": "completed"} and "progress" not in voice
    speaker = db.get_item(TableName="t", Key={"PK": {"S": "TENANT#p"}, "SK": {"S": "SPEAKER#s"}})["Item"]
    assert speaker["training_status"] == {"S": "failed"} and speaker["version"] == {"N": "5"}
    assert fail_interrupted_jobs(db, "t") == []


def test_local_sweeper_runs_on_the_template_schedule() -> None:
    assert sweeper_interval_seconds() == 300  # template.yaml: rate(5 minutes)


def test_interrupted_jobs_resume_from_the_stage_they_were_in(client, services, dispatcher, wav_tone, tmp_path) -> None:
    """What a restart does with the journaled inputs: a split-and-embed that had finished splitting runs
    again as an embed job; a job with no journaled input is failed with the reason."""
    journal = ExecutionJournal(tmp_path / JOURNAL_FILE)
    created = client.post(
        f"/api/voices/{PARTNER}", data={"name": "v1"}, files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")}
    )
    assert created.status_code == 201, created.text
    client.post(f"/api/voices/{PARTNER}", data={"name": "v2"}, files={"file": ("a.wav", wav_tone.read_bytes())})
    split_and_embed, unjournaled = dispatcher.jobs
    journal.record(split_and_embed.model_dump_json())
    journal.record('{"not": "a pipeline job"}')  # other executions are ignored
    # The process died while v1 was embedding: splitting had completed (the pipeline's start-embedding step).
    services.voices.update_stage(
        PARTNER,
        "v1",
        split_and_embed.owner_id,
        Stage.SPLITTING,
        {"splitting_status": "completed", "embedding_status": "in_progress"},
    )
    voice = services.voices.require(PARTNER, "v1")
    assert (voice.splitting_status, voice.embedding_status) == ("completed", "in_progress")

    restarted = ExecutionJournal(tmp_path / JOURNAL_FILE)  # read back from disk, as the next start does
    resumed = resume_interrupted_jobs(services, restarted)
    failed = fail_interrupted_jobs(services.dynamodb, services.settings.table_name, resumed=resumed)

    assert resumed == [f"TENANT#{PARTNER}/VOICE#v1:embed"]
    embed = dispatcher.jobs[-1]
    assert embed.kind == JobKind.EMBED and embed.job_id != split_and_embed.job_id
    assert (embed.partner, embed.name, embed.owner_id) == (PARTNER, "v1", split_and_embed.owner_id)
    assert embed.params["tts_type"] == split_and_embed.params["tts_type"]
    assert services.voices.require(PARTNER, "v1").embedding_status == "in_progress"
    assert failed == [f"TENANT#{PARTNER}/VOICE#v2:splitting"]
    v2 = services.voices.require(PARTNER, unjournaled.name)
    assert v2.splitting_error == INTERRUPTED_REASON
    assert restarted.job_for(unjournaled.owner_id) is None and restarted.job_for(embed.owner_id) is not None


def test_resumed_job_is_the_kind_of_the_stages_left() -> None:
    job = VoiceJob(kind=JobKind.SPLIT_AND_EMBED, partner="p", name="v", voice_id="id", params={"tts_type": "x"})
    assert resumed_job(job, {Stage.SPLITTING, Stage.EMBEDDING}).kind == JobKind.SPLIT_AND_EMBED
    assert resumed_job(job, {Stage.SPLITTING}).kind == JobKind.SPLIT_AND_EMBED
    assert resumed_job(job, {Stage.EMBEDDING}).kind == JobKind.EMBED
    assert resumed_job(job, set()) is None
    assert resumed_job(job, {Stage.CLONE}) is None  # not this job's stage: nothing to resume it from
    clone = SpeakerJob(kind=JobKind.CLONE, partner="p", name="s", speaker_id="sid", params={"tts_type": "x"})
    assert resumed_job(clone, {Stage.CLONE}).kind == JobKind.CLONE
