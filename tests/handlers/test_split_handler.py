"""The split Lambda: event in, sample count out; SplitError keeps its type name for the Catch."""

import pytest

from tests import audio_factory
from tests.conftest import PARTNER


class Context:
    function_name = "split"
    memory_limit_in_mb = 2048
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:split"
    aws_request_id = "req-split"


@pytest.fixture
def split_handler(services, monkeypatch):
    from voice_onboarding.handlers import split

    monkeypatch.setattr(split, "_services", services)
    return split.handler


def _event(services, name):
    voice = services.voices.require(PARTNER, name)
    job = {"job_id": "j1", "kind": "split", "partner": PARTNER, "name": name, "voice_id": voice.voice_id,
           "params": {"max_samples": 4, "sample_duration": 8}}  # fmt: skip
    return {"job": job}


def test_handler_splits(split_handler, client, services, speech_recording):
    data = speech_recording.path.read_bytes()
    client.post(f"/api/voices/{PARTNER}", data={"name": "v"}, files={"file": ("r.wav", data, "audio/wav")})
    assert split_handler(_event(services, "v"), Context()) == {"sample_count": 4}


def test_handler_raises_split_error_by_name(split_handler, client, services, tmp_path):
    noise = audio_factory.noise(tmp_path / "n.wav", 12)
    client.post(
        f"/api/voices/{PARTNER}", data={"name": "v"}, files={"file": ("n.wav", noise.read_bytes(), "audio/wav")}
    )
    with pytest.raises(Exception) as raised:
        split_handler(_event(services, "v"), Context())
    assert type(raised.value).__name__ == "SplitError"
    assert "no speech" in str(raised.value)
