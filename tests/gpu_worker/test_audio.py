"""Test samples (and LoRA evaluation audio) are served in the one format of every audio file: Opus 96 kb/s."""

import numpy as np
from gpu_worker.audio import encode_opus

from voice_onboarding.audio.ffmpeg import bitrate_kbps, probe


def test_encoded_test_audio_is_opus_near_96kbps_mono_48khz(tmp_path) -> None:
    rate = 24_000  # what the Kyutai engines synthesize at
    t = np.arange(4 * rate) / rate
    # Speech-like: a buzz whose pitch and level move, with pauses (CBR holds the rate on any content).
    wav = 0.3 * np.sin(2 * np.pi * (120 + 40 * np.sin(2 * np.pi * 0.5 * t)) * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    wav += 0.02 * np.random.default_rng(0).standard_normal(t.size)
    path = tmp_path / "test_1_1.opus"
    path.write_bytes(encode_opus(wav.astype(np.float32), rate))
    info = probe(path)
    assert info.codec == "opus" and info.duration is not None and abs(info.duration - 4) < 0.1
    assert 88 <= bitrate_kbps(path) <= 104
