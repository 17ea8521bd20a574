"""`clone`: reference clip -> the engine's voice conditioning (.npy) on the presigned PUT URL."""

import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gpu_worker import audio, transfer
from gpu_worker.engines import get_engine
from voice_onboarding.contract.gpu import CloneInput, CloneResult


def run(inp: CloneInput, progress: Callable[[str], None]) -> dict:
    progress(f"loading engine {inp.tts_type}")
    engine = get_engine(inp.tts_type)
    with tempfile.TemporaryDirectory(prefix="clone-") as tmp:
        progress("downloading reference")
        ref = transfer.download(str(inp.reference_url), Path(tmp) / "reference")
        duration = len(audio.load_mono(ref)) / audio.SAMPLE_RATE
        progress("computing voice conditioning")
        conditioning = engine.conditioning(ref)
    buf = io.BytesIO()
    np.save(buf, conditioning)
    progress("uploading voice conditioning")
    transfer.upload(str(inp.outputs.voice_conditioning), buf.getvalue())
    return CloneResult(
        tts_type=inp.tts_type, embedding_dim=int(conditioning.shape[0]), reference_duration=round(duration, 3)
    ).model_dump()
