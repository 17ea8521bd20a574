"""Property-based fuzzing of every operation in the app's own OpenAPI document (schemathesis):
no 5xx, and every response conforms to what the document promises."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import PARTNER
from voice_onboarding.services.gpu_jobs import clone

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Bounded so the suite stays fast; derandomized so a failure reproduces on the next run.
EXAMPLES_PER_OPERATION = 8
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
    clone.apply_result(services, dispatcher.jobs[-1], {})


def test_every_operation_survives_generated_input(app, client, api_key, dispatcher, services, wav_tone):
    _seed(client, dispatcher, services, wav_tone)
    # schemathesis' pytest plugin (from_fixture) does not support this pytest; drive Hypothesis directly.
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 25
    statuses: set[int] = set()

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
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

        exercise()
    # The fuzzing reached the handlers, not just the auth layer.
    assert {200, 422} <= statuses
