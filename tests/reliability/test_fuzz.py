"""Property-based fuzzing of every operation in the app's own OpenAPI document (schemathesis):
no 5xx, and every response conforms to what the document promises."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import PARTNER
from voice_onboarding.services.gpu_jobs import CloneJob


def no_traceback_in_body(ctx, response, case) -> bool | None:
    """Internals never leak, whatever the status."""
    body = response.content or b""
    if b"Traceback (most recent call last)" in body or b'File "/' in body:
        raise AssertionError(f"traceback in the response body of {case.method} {case.path}")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    no_traceback_in_body,
]
# Bounded so the suite stays well under a minute on 2 cores; derandomized so a failure reproduces.
EXAMPLES_PER_OPERATION = 10
NEGATIVE_EXAMPLES_PER_OPERATION = 5
# Path parameters pinned to things that exist, so the generated bodies and queries reach the handlers
# instead of stopping at 403/404.
EXISTING = {"partner": PARTNER, "voice": "fuzz-voice", "name": "fuzz-speaker"}


def _seed(client, dispatcher, services, wav_tone):
    client.post(f"/api/voices/{PARTNER}/empty", data={"name": "fuzz-voice"})
    client.post(
        f"/api/voices/{PARTNER}/fuzz-voice/samples", files={"file": ("a.wav", wav_tone.read_bytes(), "audio/wav")}
    )
    from tests import audio_factory

    reference = audio_factory.tone(wav_tone.parent / "ref.wav", 12.0)
    client.post(
        "/api/voice/models/speakers",
        data={"name": "fuzz-speaker", "language": "en-US"},
        files={"reference_audio": ("ref.wav", reference.read_bytes(), "audio/wav")},
    )
    job = dispatcher.jobs[-1]
    CloneJob.apply_result(services, job, {"tts_type": job.params.get("tts_type", "kyutai"), "embedding_dim": 256})


@pytest.mark.parametrize(
    ("mode", "examples"),
    # Negative: schema-violating input (malformed JSON/multipart, wrong types) must get a documented 4xx.
    [(GenerationMode.POSITIVE, EXAMPLES_PER_OPERATION), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES_PER_OPERATION)],
    ids=["positive", "negative"],
)
def test_every_operation_survives_generated_input(app, client, api_key, dispatcher, services, wav_tone, mode, examples):
    _seed(client, dispatcher, services, wav_tone)
    # schemathesis' pytest plugin (from_fixture) does not support this pytest; drive Hypothesis directly.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 25
    statuses: set[int] = set()

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            for name, value in EXISTING.items():
                if case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = value
            response = case.call_and_validate(headers={"X-Api-Key": api_key}, checks=CHECKS)
            statuses.add(response.status_code)

        try:
            exercise()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to violate (no parameters, no body)
    # The fuzzing reached the handlers, not just the auth layer.
    assert ({200, 422} if mode is GenerationMode.POSITIVE else {422}) <= statuses
