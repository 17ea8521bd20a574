"""The background encoder the splitter runs beside DNSMOS: it encodes the likely samples while they are
scored, and after the choice only what was kept (an extra DNSMOS promoted included)."""

import time

import pytest

from voice_onboarding.audio.encoding import BackgroundEncoder
from voice_onboarding.audio.ffmpeg import bitrate_kbps, probe


def _cuts(tmp_path, count):
    return [(tmp_path / f"candidate-{n}.opus", 2.0 + 4 * n, 3.0, -2.0) for n in range(count)]


def test_only_kept_candidates_are_encoded_including_a_promoted_extra(speech_recording, tmp_path):
    cuts = _cuts(tmp_path, 6)
    with BackgroundEncoder(speech_recording.path, likely=3) as encoder:
        for number, cut in enumerate(cuts):
            encoder.offer(number, cut)
        encoded = encoder.finish(keep=[1, 4])  # 4 was not among the likely three: DNSMOS promoted it
    assert sorted(encoded) == [1, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate-1.opus", "candidate-4.opus"]
    info = probe(cuts[4][0])
    assert info.codec == "opus"
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert 88 <= bitrate_kbps(cuts[4][0]) <= 104


def test_likely_candidates_are_encoded_while_the_choice_is_still_open(speech_recording, tmp_path):
    cuts = _cuts(tmp_path, 5)
    with BackgroundEncoder(speech_recording.path, likely=5) as encoder:
        for number, cut in enumerate(cuts[:4]):  # a full batch: the encoder starts without waiting
            encoder.offer(number, cut)
        deadline = time.monotonic() + 60
        while not all(cut[0].exists() for cut in cuts[:4]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(cut[0].exists() for cut in cuts[:4]), "nothing was encoded before the choice"
        encoder.offer(4, cuts[4])
        encoded = encoder.finish(keep=[0, 2, 4])
    # 1 and 3 were encoded for nothing (the caller deletes them); 4 still was, after the choice.
    assert sorted(encoded) == [0, 1, 2, 3, 4]


def test_an_encoding_failure_reaches_the_caller(tmp_path):
    missing = tmp_path / "gone.opus"
    with BackgroundEncoder(missing, likely=1) as encoder:
        encoder.offer(0, (tmp_path / "candidate-0.opus", 0.0, 1.0, 0.0))
        with pytest.raises(RuntimeError, match="ffmpeg failed to encode"):
            encoder.finish(keep=[0])
