"""`clone`: reference clip -> the engine's voice conditioning on the presigned PUT URL.

Engines that speak upload their voice artifact (the same `voice.safetensors` as in an embedding zip, made
from the reference's prompt); the speaker-encoder engine uploads its d-vector as `.npy`.
"""

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gpu_worker import audio, transfer, voices
from voice_onboarding.contract.gpu import CloneInput, CloneResult, output_name


def run(inp: CloneInput, progress: Callable[[str], None]) -> dict:
    progress(f"loading engine {inp.tts_type}")
    engine = voices.engine_for(inp.tts_type, inp.language)
    with tempfile.TemporaryDirectory(prefix="clone-") as tmp:
        progress("downloading reference")
        ref = transfer.download(str(inp.reference_url), Path(tmp) / "reference")
        wav = audio.load_mono(ref)
        duration = len(wav) / audio.SAMPLE_RATE
        progress("computing voice conditioning")
        if engine.can_synthesize:
            files = voices.make_voice_files(engine, ref, Path(tmp) / "voice")
            voices.reload_voice(engine, files.artifact_path)  # what a runtime will do: fail here, not there
            data = files.artifact_path.read_bytes()
        else:
            buf = io.BytesIO()
            np.save(buf, engine.embed(wav, audio.SAMPLE_RATE))
            data = buf.getvalue()
    progress("uploading voice conditioning")
    transfer.upload(inp.outputs.voice_conditioning, data, output=output_name("voice_conditioning"))
    return CloneResult(
        tts_type=inp.tts_type, embedding_dim=engine.embedding_dim, reference_duration=round(duration, 3)
    ).model_dump()
