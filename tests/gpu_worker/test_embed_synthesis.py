"""The embed path of engines that synthesize (kyutai on the GPU), run with a test engine on CPU.

The test engine "synthesizes" by returning the voice sample's own audio: a stand-in for the model,
so that the worker's own logic (per-sample test sentences, uploads, synthesis similarity in the
score) runs for real.
"""

from pathlib import Path

import numpy as np
import pytest
from gpu_worker.audio import SAMPLE_RATE, load_mono
from gpu_worker.engines.resemblyzer_engine import ResemblyzerEngine
from gpu_worker.handler import handler

from gpu_worker import engines


class _EchoEngine(ResemblyzerEngine):
    name = "echo-test"
    can_synthesize = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def synthesize(self, text: str, voice_sample: Path) -> tuple[np.ndarray, int]:
        self.calls.append((text, voice_sample.name))
        return load_mono(voice_sample), SAMPLE_RATE


@pytest.fixture
def echo_engine(monkeypatch: pytest.MonkeyPatch, encoder) -> _EchoEngine:
    engine = _EchoEngine()
    monkeypatch.setitem(engines.ENGINES, "echo-test", lambda: engine)
    monkeypatch.setitem(engines._loaded, "echo-test", engine)
    return engine


def test_synthesizing_engine_uploads_test_samples_and_scores_them(blob_server, voices, echo_engine) -> None:
    names = ["same_0", "same_1", "other"]
    samples = [{"index": i, "url": blob_server.put(f"s/{i}.wav", voices[n])} for i, n in enumerate(names, 1)]
    # The dispatcher may ask for fewer files than it could (here none for sample 3): only those are uploaded.
    wanted = {f"test_{i}_1.opus": blob_server.url(f"t/test_{i}_1.opus") for i in (1, 2)}
    out = handler(
        {"id": "j", "input": {"kind": "embed", "tts_type": "echo-test", "samples": samples,
                              "sentences": ["First sentence."],
                              "outputs": {"test_samples": wanted, "embedding_zip": blob_server.url("e.zip")}}}
    )  # fmt: skip
    assert "error" not in out, out
    assert len(echo_engine.calls) == 3  # every sample x every sentence is synthesized and judged
    assert sorted((t["sample_index"], t["sentence_index"]) for t in out["test_samples"]) == [(1, 1), (2, 1)]
    for name in wanted:
        assert blob_server.get(f"t/{name}")[:4] == b"OggS"
        assert blob_server.content_types[f"/t/{name}"] == "audio/ogg"
    assert out["note"] is None and "synthesize" in out["timings"]
    assert out["sample_scores"][-1]["sample_index"] == 3 and out["sample_scores"][-1]["flagged"]
