"""The two small ONNX models the splitter runs on CPU with onnxruntime, loaded from the wheels that ship
them (no hub download): DNSMOS P.835 from `speechmos`, Silero VAD from `silero-vad`. Neither package is
imported: speechmos's module needs librosa and silero_vad's needs torch; only their model files are read.

Costs (benchmarks/split_bench.py prints them): DNSMOS ~0.4 s of CPU per 9 s window (87 % of it in two
full-resolution convolutions of the model: intrinsic, neither thread count nor graph optimisation level
changes it much), Silero ~0.5 ms per 32 ms chunk."""

import importlib.util
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

SAMPLE_RATE = 16_000
DNSMOS_WINDOW = int(9.01 * SAMPLE_RATE)  # the model's fixed input length
# Windows per sample, spread evenly over it (one window: the sample's first 9 s). One window costs ~0.4 s
# of CPU, so the split Lambda scores one per candidate, where the reference (dnsmos_local.py, speechmos)
# averages a window every second (7 for a 15 s sample). On 15 s espeak clips the one window differs from
# that average by 0.08 OVRL on average (0.3 at most; BAK 0.16, 0.6 at most); two windows (first and last
# 9 s) halve that for twice the cost.
DNSMOS_MAX_WINDOWS = 1
# speechmos' polynomial mapping of the raw P.835 outputs to MOS (non-personalised model).
_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
_OVRL = np.poly1d([-0.06766283, 1.11546468, 0.04602535])
SILERO_CHUNK = 512  # 32 ms at 16 kHz, the model's fixed step
_SILERO_CONTEXT = 64


def _package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / relative


@lru_cache(maxsize=2)
def _session(package: str, relative: str) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One intra-op thread, no spinning: a second intra-op thread mostly spin-waits (DNSMOS cost 586 ms of CPU
    # per candidate with the default pool against 480 ms with one thread, benchmarks/split_bench.py, 30 min
    # recording, same scores). The split Lambda's second vCPU runs a second candidate instead (splitter.assess).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    # The arena keeps one run's peak allocated between runs (a split's peak RSS 258 -> 341 MB, flat in the
    # recording's length; ~110 MB more per concurrent run) and saves a fresh ~110 MB allocation per DNSMOS run:
    # 480 -> 395 ms of CPU per candidate on a 30 min recording (benchmarks/split_bench.py).
    options.enable_cpu_mem_arena = True
    path = str(_package_file(package, relative))
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class Dnsmos(BaseModel):
    sig: float  # speech signal quality, 1..5
    bak: float  # background intrusiveness, 1..5 (5 = not noticeable)
    ovrl: float  # overall, 1..5


def dnsmos(signal: np.ndarray) -> Dnsmos:
    """DNSMOS P.835 of 16 kHz mono float audio in [-1, 1], averaged over up to DNSMOS_MAX_WINDOWS windows
    of 9.01 s (a shorter signal is repeated to fill one window, as the reference implementation does)."""
    audio = np.clip(signal.astype(np.float32), -1.0, 1.0)
    if audio.size == 0:
        raise ValueError("empty signal")
    if audio.size < DNSMOS_WINDOW:
        audio = np.tile(audio, math.ceil(DNSMOS_WINDOW / audio.size))
    count = min(DNSMOS_MAX_WINDOWS, math.ceil(audio.size / DNSMOS_WINDOW))
    starts = np.linspace(0, audio.size - DNSMOS_WINDOW, count).astype(int)
    session = _session("speechmos", "dnsmos_models/sig_bak_ovr.onnx")
    raw = np.stack([session.run(None, {"input_1": audio[s : s + DNSMOS_WINDOW][None, :]})[0][0] for s in starts])
    sig, bak, ovrl = raw.mean(axis=0)
    return Dnsmos(sig=round(float(_SIG(sig)), 3), bak=round(float(_BAK(bak)), 3), ovrl=round(float(_OVRL(ovrl)), 3))


def preload() -> None:
    """Load both models, once: the splitter calls this before its worker threads race to (each session
    serves concurrent runs; onnxruntime releases the GIL while one runs)."""
    _session("speechmos", "dnsmos_models/sig_bak_ovr.onnx")
    _session("silero_vad", "data/silero_vad_16k_op15.onnx")


def speech_probabilities(signal: np.ndarray) -> np.ndarray:
    """Silero VAD speech probability per 32 ms chunk of 16 kHz mono float audio (a partial last chunk is
    zero-padded). The model is recurrent: its state runs from the first chunk to the last."""
    session = _session("silero_vad", "data/silero_vad_16k_op15.onnx")
    chunks = -(-signal.size // SILERO_CHUNK)
    padded = np.zeros(chunks * SILERO_CHUNK + _SILERO_CONTEXT, dtype=np.float32)
    padded[_SILERO_CONTEXT : _SILERO_CONTEXT + signal.size] = signal
    state = np.zeros((2, 1, 128), dtype=np.float32)
    rate = np.array(SAMPLE_RATE, dtype=np.int64)
    out = np.empty(chunks, dtype=np.float32)
    for i in range(chunks):
        window = padded[i * SILERO_CHUNK : (i + 1) * SILERO_CHUNK + _SILERO_CONTEXT][None, :]
        probability, state = session.run(None, {"input": window, "state": state, "sr": rate})
        out[i] = probability[0, 0]
    return out
