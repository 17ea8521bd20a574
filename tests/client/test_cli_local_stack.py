"""The CLI and client over real HTTP against the embedded local stack (`make run`'s), pipeline included:
a 30+ MB WAV becomes a ready voice in one command, downloads stream to files, a server whose direct
limit is below the client's answers 413 and the client goes presigned instead."""

import io
import json
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.audio_factory import KnownRecording
from tests.client.conftest import STACK_DIRECT_LIMIT, STACK_INLINE_DOWNLOAD_LIMIT, LocalStack
from voice_onboarding.audio.ffmpeg import ffmpeg_exe
from voice_onboarding_client import NotFound, VoiceOnboardingClient

pytestmark = pytest.mark.slow
PARTNER = "my-partner"


@pytest.fixture(scope="module")
def large_wav(speech_recording: KnownRecording, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ~50 s speech recording as 96 kHz 32-bit stereo: above 30 MB (what a 3-minute 44.1 kHz
    16-bit stereo recording weighs), with a third of the audio to split and embed."""
    path = tmp_path_factory.mktemp("large") / "recording.wav"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(speech_recording.path),
         "-ar", "96000", "-ac", "2", "-c:a", "pcm_s32le", str(path)],
        check=True,
    )  # fmt: skip
    assert path.stat().st_size > 30_000_000
    return path


def test_large_recording_to_ready_voice_in_one_command(
    local_stack: LocalStack, large_wav: Path, speech_recording: KnownRecording, tmp_path: Path
) -> None:
    pytest.importorskip("resemblyzer")
    done = local_stack.cli(
        "voices", "create", PARTNER, "speaker-1", str(large_wav),
        "--creator-name", "John", "--creator-email", "john@example.com", "--wait", "--json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr + local_stack.log.read_text()[-3000:]
    voice = json.loads(done.stdout)  # stdout is the final JSON and nothing else
    assert voice["status"] == {"splitting": "completed", "embedding": "completed"}
    assert voice["original_uploaded_name"] == "recording.wav" and voice["creator_name"] == "John"
    assert voice["original_duration"] == pytest.approx(speech_recording.duration, abs=1.0)
    indices = [s["index"] for s in voice["samples"]]
    assert len(indices) >= 2 and voice["preferred_sample_index"] in indices
    assert {s["sample_index"] for s in voice["embedding_info"]["sample_scores"]} == set(indices)
    # Progress went to stderr, one line per stage change (not a terminal here).
    assert "uploading recording.wav: 38" in done.stderr
    assert "splitting: completed" in done.stderr and "embedding: completed" in done.stderr
    assert "Traceback" not in done.stderr

    # Downloads stream to files.
    # The bundle is above the stack's inline limit: a 307 to storage, followed by the CLI.
    bundle = local_stack.cli("samples", "bundle", PARTNER, "speaker-1", "-o", str(tmp_path / "bundle.zip"))
    assert bundle.returncode == 0, bundle.stderr
    assert (tmp_path / "bundle.zip").stat().st_size > STACK_INLINE_DOWNLOAD_LIMIT
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        assert {f"{i}.opus" for i in indices} | {"voice_info.json"} == set(archive.namelist())
    first = str(indices[0])
    sample = local_stack.cli("samples", "download", PARTNER, "speaker-1", first, "-o", str(tmp_path / "s.opus"))
    assert sample.returncode == 0 and (tmp_path / "s.opus").read_bytes()[:4] == b"OggS"
    embedding = local_stack.cli("voices", "download-embedding", PARTNER, "speaker-1", "-o", str(tmp_path / "e.zip"))
    assert embedding.returncode == 0, embedding.stderr
    assert zipfile.is_zipfile(tmp_path / "e.zip")

    listed = local_stack.cli("voices", "list", PARTNER, "--json")
    assert [v["name"] for v in json.loads(listed.stdout)] == ["speaker-1"]
    missing = local_stack.cli("voices", "get", PARTNER, "nobody")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == "error: Voice not found (HTTP 404)"


def test_server_413_falls_back_to_a_presigned_upload(local_stack: LocalStack, tmp_path: Path) -> None:
    wav = tmp_path / "sample.wav"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=220:duration=14:sample_rate=44100",
         "-ac", "2", str(wav)],
        check=True,
    )  # fmt: skip
    assert STACK_DIRECT_LIMIT < wav.stat().st_size < 5_000_000  # direct for the client, too big for the server
    statuses: list[tuple[str, int]] = []
    http = httpx.Client(
        base_url=local_stack.url,
        event_hooks={"response": [lambda r: statuses.append((r.request.url.path, r.status_code))]},
    )
    with VoiceOnboardingClient(local_stack.url, local_stack.key, http_client=http) as api:
        api.create_empty_voice(PARTNER, "uploads")
        sample = api.upload_sample(PARTNER, "uploads", wav)
        assert sample.index == 1 and sample.duration == pytest.approx(14, abs=0.5)
        # A file object works as well as a path, and small files go direct.
        small = api.upload_sample(PARTNER, "uploads", io.BytesIO(wav.read_bytes()[:1_000_000]), filename="s.wav")
        assert small.index == 2
        assert [s.index for s in api.get_voice(PARTNER, "uploads").samples] == [1, 2]
        api.delete_voice(PARTNER, "uploads")
        with pytest.raises(NotFound):
            api.get_voice(PARTNER, "uploads")
    samples_path = f"/api/voices/{PARTNER}/uploads/samples"
    assert statuses[1:5] == [
        (samples_path, 413),
        (f"/api/uploads/{PARTNER}", 201),
        (samples_path, 201),
        (samples_path, 201),
    ]


def test_speaker_clips_above_the_payload_limit_go_presigned(local_stack: LocalStack, tmp_path: Path) -> None:
    """A 20 s reference clip and a 20 s dataset sample as 96 kHz 32-bit stereo WAV (15 MB each, above
    Lambda's 6 MB payload): the CLI stages them in storage and names the upload; the speaker's reference
    is the uploaded file, byte for byte. Sent directly, the API answers 413 naming the way round."""
    clips = []
    for name, frequency in (("reference.wav", 220), ("sample.wav", 330)):
        path = tmp_path / name
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency={frequency}:duration=20",
             "-ar", "96000", "-ac", "2", "-c:a", "pcm_s32le", str(path)],
            check=True,
        )  # fmt: skip
        assert path.stat().st_size > 6 * 1024 * 1024
        clips.append(path)
    reference, sample = clips

    direct = httpx.post(
        f"{local_stack.url}/api/voice/models/speakers",
        headers={"X-Api-Key": local_stack.key},
        data={"name": "big-clip", "language": "en-US"},
        files={"reference_audio": ("reference.wav", reference.read_bytes(), "audio/wav")},
        timeout=60,
    )
    assert direct.status_code == 413
    assert "POST /api/voice/uploads for a presigned upload" in direct.json()["detail"]

    created = local_stack.cli("speakers", "create", "big-clip", "en-US", str(reference), "--json")
    assert created.returncode == 0, created.stderr + local_stack.log.read_text()[-3000:]
    assert json.loads(created.stdout)["name"] == "big-clip"
    assert "uploading reference.wav" in created.stderr
    added = local_stack.cli("dataset", "upload", "big-clip", str(sample), "A steady tone.", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["duration_seconds"] == pytest.approx(20, abs=0.1)

    downloaded = local_stack.cli("speakers", "reference", "big-clip", "-o", str(tmp_path / "back.wav"))
    assert downloaded.returncode == 0, downloaded.stderr
    assert (tmp_path / "back.wav").read_bytes() == reference.read_bytes()
    status = local_stack.cli("dataset", "status", "big-clip", "--json")
    assert json.loads(status.stdout)["sample_count"] == 1

    staged = local_stack.cli("uploads", "speaker", str(sample), "--json")  # for curl users
    assert staged.returncode == 0 and json.loads(staged.stdout)["upload_id"].startswith("up_")
