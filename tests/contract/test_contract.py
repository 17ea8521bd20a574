"""The GPU contract both deployables share: what it may import, the engine table as the API enforces
it and the worker serves it, one set of quality thresholds, and inputs the worker accepts as built."""

import ast
import sys
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from gpu_worker import engines as worker_engines
from gpu_worker import scoring
from tests.api.test_speakers_api import BASE as SPEAKERS
from tests.api.test_speakers_api import _create as create_speaker
from tests.api.test_speakers_api import clips  # noqa: F401 - module-scoped fixture
from tests.api.test_voices_api import BASE as VOICES
from tests.api.test_voices_api import _create_empty, _upload_sample
from voice_onboarding import contract
from voice_onboarding.contract import engines, quality
from voice_onboarding.contract.gpu import JobInput
from voice_onboarding.services.gpu_jobs import CloneJob, EmbedJob

CONTRACT_DIR = Path(contract.__file__).parent


def test_contract_imports_only_pydantic_and_the_standard_library():
    for path in CONTRACT_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                allowed = (
                    top in sys.stdlib_module_names or top == "pydantic" or name.startswith("voice_onboarding.contract")
                )
                assert allowed, f"{path.name} imports {name}"


def test_worker_serves_exactly_the_contracts_engines():
    assert set(worker_engines.ENGINES) == set(engines.ENGINES)
    assert engines.DEFAULT_TTS_TYPE in engines.ENGINES


def test_language_matching_uses_the_language_subtag():
    kyutai = engines.capabilities(engines.KYUTAI)
    assert kyutai.speaks("en-US") and kyutai.speaks("en-GB") and not kyutai.speaks("hi-IN")
    assert engines.capabilities(engines.RESEMBLYZER).speaks("hi-IN")  # a speaker encoder: any language
    with pytest.raises(engines.UnknownTtsType, match="supported: kyutai, kyutai-pocket, resemblyzer"):
        engines.capabilities("nope")


def test_worker_flags_what_the_splitter_would_have_dropped():
    # Between the old worker thresholds (10 dB, 0.4, 1 %) and the splitter's: flagged now.
    borderline = {
        "speech_ratio": quality.MIN_SPEECH_RATIO - 0.05,
        "snr_db": quality.MIN_SNR_DB - 1,
        "clipping_ratio": quality.MAX_CLIPPING_RATIO * 2,
    }
    _, reason = scoring.quality_score(borderline)
    assert "low speech ratio" in reason and "low SNR" in reason and "clipping" in reason
    clean = {"speech_ratio": quality.MIN_SPEECH_RATIO, "snr_db": quality.MIN_SNR_DB, "clipping_ratio": 0.0}
    assert scoring.quality_score(clean)[1] is None


def test_embed_with_an_unknown_tts_type_is_422_naming_the_supported(client, dispatcher, services, wav_tone):
    _create_empty(client)
    _upload_sample(client, "speaker-2", wav_tone)
    response = client.post(f"{VOICES}/speaker-2/embed", data={"tts_type": "nope"})
    assert response.status_code == 422
    assert response.json() == {"detail": "tts_type must be one of kyutai, kyutai-pocket, resemblyzer (got 'nope')"}
    assert client.get(f"{VOICES}/speaker-2").json()["status"]["embedding"] == "idle"  # nothing started
    assert dispatcher.jobs == []


def test_embed_input_as_built_is_what_the_worker_validates(client, dispatcher, services, wav_tone):
    _create_empty(client)
    _upload_sample(client, "speaker-2", wav_tone)
    assert client.post(f"{VOICES}/speaker-2/embed", data={"tts_type": "resemblyzer"}).status_code == 202
    built = EmbedJob.build_input(services, dispatcher.jobs[-1])
    parsed = TypeAdapter(JobInput).validate_python(built)
    assert parsed.kind == "embed" and parsed.tts_type == "resemblyzer" and len(parsed.samples) == 1
    assert set(parsed.outputs.test_samples) == {"test_1_1.opus", "test_1_2.opus"}


def test_speaker_language_the_engine_does_not_speak_is_422(client, clips, services, dispatcher):  # noqa: F811
    response = create_speaker(client, clips, language="hi-IN")
    assert response.status_code == 422
    detail = "tts_type kyutai does not support language hi-IN: it speaks en; engines for hi-IN: resemblyzer"
    assert response.json() == {"detail": detail}
    assert client.get(f"{SPEAKERS}/aria-custom").status_code == 404 and dispatcher.jobs == []
    created = create_speaker(client, clips, language="en-GB")
    assert created.status_code == 201, created.text
    assert TypeAdapter(JobInput).validate_python(CloneJob.build_input(services, dispatcher.jobs[-1])).kind == "clone"
