"""Fixtures for the worker: a presigned-URL stand-in (local HTTP GET/PUT) and espeak-ng speech."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from tests import audio_factory

# CI runs two xdist workers on two cores: torch's default intra-op threads would oversubscribe them, and
# OpenMP's spin-waits then cost more CPU than the tiny models' work.
torch.set_num_threads(1)


class BlobServer:
    """Serves GET of stored blobs and accepts PUT, like S3 presigned URLs (query string ignored)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        blobs, types = self.blobs, self.content_types

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                key = self.path.split("?")[0]
                if key not in blobs:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(blobs[key])))
                self.end_headers()
                self.wfile.write(blobs[key])

            def do_PUT(self) -> None:
                key = self.path.split("?")[0]
                blobs[key] = self.rfile.read(int(self.headers["Content-Length"]))
                types[key] = self.headers.get("Content-Type", "")
                self.send_response(200)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, key: str) -> str:
        return f"{self.base}/{key}?X-Amz-Signature=test"

    def put(self, key: str, path: Path) -> str:
        self.blobs[f"/{key}"] = path.read_bytes()
        return self.url(key)

    def get(self, key: str) -> bytes:
        return self.blobs[f"/{key}"]


@pytest.fixture
def blob_server() -> Iterator[BlobServer]:
    server = BlobServer()
    thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet again tomorrow morning to discuss the results of the project.",
    "A journey of a thousand miles begins with a single step forward.",
]


@pytest.fixture(scope="session")
def voices(espeak_ng: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three clips of one espeak voice and one clip of another voice (different variant and pitch)."""
    d = tmp_path_factory.mktemp("voices")
    out = {f"same_{i}": audio_factory.speech(d / f"same_{i}.wav", s, pitch=40) for i, s in enumerate(SENTENCES[:3])}
    out["other"] = audio_factory.speech(d / "other.wav", SENTENCES[3], voice="en+f3", pitch=80)
    return out


@pytest.fixture(scope="session")
def voices_audio(voices: dict[str, Path]) -> dict[str, Path]:
    """`voices` under a name that does not shadow the gpu_worker.voices module in a test."""
    return voices


@pytest.fixture(scope="session")
def encoder() -> object:
    """Loads the VoiceEncoder once per session (the worker caches it per process too)."""
    from gpu_worker.engines.speaker_encoder import get_encoder

    return get_encoder("cpu")


# Tiny-model engine settings: short prompts and generation budgets keep a CPU synthesis to a few seconds.
TINY_ENV = {
    "KYUTAI_DEVICE": "cpu",
    "KYUTAI_PROMPT_SECONDS": "2",
    "KYUTAI_GEN_BASE_SECONDS": "0.3",
    "KYUTAI_GEN_SECONDS_PER_WORD": "0.3",
    "POCKET_PROMPT_SECONDS": "3",
    "HF_HUB_OFFLINE": "1",
}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-weight Kyutai models from the real classes, built once per session (a few seconds)."""
    from tests.gpu_worker import tiny_models as tm

    d = tmp_path_factory.mktemp("tiny-models")
    return {
        "dsm": tm.build_dsm(d / "dsm", fuser="empty"),
        "dsm_cfg": tm.build_dsm(d / "dsm_cfg", fuser="cfg"),
        "dsm_nofuser": tm.build_dsm(d / "dsm_nofuser", fuser="none"),
        "pocket": tm.build_pocket(d / "pocket"),
    }


@pytest.fixture
def tiny_engines(tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch, encoder: object) -> dict[str, Path]:
    """The worker's engines configured on the tiny models (`kyutai` on the empty-fuser DSM); fresh cache."""
    from gpu_worker import engines

    for key, value in TINY_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KYUTAI_TTS_REPO", str(tiny_models["dsm"]))
    monkeypatch.setenv("POCKET_TTS_CONFIG", str(tiny_models["pocket"]))
    monkeypatch.setattr(engines, "_loaded", {})
    return tiny_models
