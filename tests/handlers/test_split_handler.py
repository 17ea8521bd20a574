"""The split Lambda: event in, sample count out; SplitError keeps its type name for the Catch."""

import json

import pytest

from tests import audio_factory
from tests.conftest import PARTNER
from voice_onboarding.audio.splitter import SplitError
from voice_onboarding.domain.jobs import PipelineJob
from voice_onboarding.handlers.composition import override


class Context:
    function_name = "split"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:split"
    aws_request_id = "req-split"


@pytest.fixture
def split_module(services):
    from voice_onboarding.handlers import split

    # The same injection point the local runner uses for every pipeline handler.
    with override(services=services):
        yield split


def _event(services, name):
    voice = services.voices.require(PARTNER, name)
    job = {"job_id": "j1", "kind": "split", "partner": PARTNER, "name": name, "voice_id": voice.voice_id,
           "params": {"max_samples": 4, "sample_duration": 8}}  # fmt: skip
    return {"job": job}


def _create(client, path):
    response = client.post(
        f"/api/voices/{PARTNER}", data={"name": "v"}, files={"file": (path.name, path.read_bytes(), "audio/wav")}
    )
    assert response.status_code == 201, response.text


def test_handler_splits_and_reports_the_sample_count_metric(split_module, client, services, speech_recording, capsys):
    _create(client, speech_recording.path)
    assert split_module.handler(_event(services, "v"), Context()) == {"sample_count": 4}
    voice = services.voices.require(PARTNER, "v")
    assert len(voice.samples) == 4 and voice.splitting_status == "completed"
    # powertools flushes the metrics as one EMF line on stdout when the handler returns.
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    produced = [m for m in emf if "SamplesProduced" in m]
    assert produced, emf
    assert produced[-1]["SamplesProduced"] in (4.0, [4.0])


def test_handler_raises_split_error_by_name(split_module, client, services, tmp_path):
    _create(client, audio_factory.noise(tmp_path / "n.wav", 12))
    with pytest.raises(Exception) as raised:
        split_module.handler(_event(services, "v"), Context())
    # Step Functions matches ErrorEquals on the type name; the message is the user-facing reason.
    assert type(raised.value).__name__ == "SplitError"
    assert str(raised.value) == "Recording contains no speech: only steady noise or tone"


def test_process_passes_the_parsed_job_to_the_injected_splitter(services):
    seen: list[PipelineJob] = []

    def fake_split(given_services, job):
        assert given_services is services
        seen.append(job)
        return 7

    event = {"job": {"job_id": "j2", "kind": "split_and_embed", "partner": PARTNER, "name": "x", "voice_id": "id",
                     "params": {"max_samples": 7}}}  # fmt: skip
    from voice_onboarding.handlers.split import process

    assert process(event, services, split=fake_split) == {"sample_count": 7}
    assert seen[0].kind == "split_and_embed" and seen[0].params == {"max_samples": 7}


def test_process_lets_split_error_through_unchanged(services):
    from voice_onboarding.handlers.split import process

    def failing(_services, _job):
        raise SplitError("Recording is too short")

    event = {"job": {"kind": "split", "partner": PARTNER, "name": "x", "voice_id": "id"}}
    with pytest.raises(SplitError, match="^Recording is too short$"):
        process(event, services, split=failing)
