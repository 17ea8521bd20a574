"""Fixtures for the worker: a presigned-URL stand-in (local HTTP GET/PUT) and espeak-ng speech."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import audio_factory


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
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three clips of one espeak voice and one clip of another voice (different variant and pitch)."""
    if not audio_factory.espeak_available():
        pytest.skip("espeak-ng not installed")
    d = tmp_path_factory.mktemp("voices")
    out = {f"same_{i}": audio_factory.speech(d / f"same_{i}.wav", s, pitch=40) for i, s in enumerate(SENTENCES[:3])}
    out["other"] = audio_factory.speech(d / "other.wav", SENTENCES[3], voice="en+f3", pitch=80)
    return out


@pytest.fixture(scope="session")
def encoder() -> object:
    """Loads the VoiceEncoder once per session (the worker caches it per process too)."""
    from gpu_worker.engines.speaker_encoder import get_encoder

    return get_encoder("cpu")
