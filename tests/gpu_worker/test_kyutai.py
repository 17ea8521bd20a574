"""Kyutai engine: ways it can be unavailable that the tiny models cannot show (a multi-speaker checkpoint,
no CUDA), against stand-in moshi modules; and the training codes layout."""

import sys
import types

import pytest
import torch
from gpu_worker.engines.base import EngineUnavailable
from gpu_worker.engines.kyutai_lora import assemble_codes


def _install_fake_moshi(monkeypatch: pytest.MonkeyPatch, from_hf_repo, multi_speaker: bool = False) -> None:
    loaders = types.ModuleType("moshi.models.loaders")
    loaders.CheckpointInfo = types.SimpleNamespace(from_hf_repo=lambda repo, **kwargs: from_hf_repo(repo))
    tts = types.ModuleType("moshi.models.tts")

    class TTSModel:
        @staticmethod
        def from_checkpoint_info(info, **kwargs):
            return types.SimpleNamespace(multi_speaker=multi_speaker, valid_cfg_conditionings=set(), cfg_coef=1.0)

    tts.TTSModel = TTSModel
    for name, module in {"moshi": types.ModuleType("moshi"), "moshi.models": types.ModuleType("moshi.models"),
                         "moshi.models.loaders": loaders, "moshi.models.tts": tts}.items():  # fmt: skip
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv("KYUTAI_DEVICE", "cpu")


def test_missing_offline_weights_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def from_hf_repo(repo: str):
        raise FileNotFoundError(f"{repo}/config.json not in the local cache (HF_HUB_OFFLINE=1)")

    _install_fake_moshi(monkeypatch, from_hf_repo)
    monkeypatch.setenv("KYUTAI_TTS_REPO", "kyutai/some-repo")
    from gpu_worker.engines.kyutai import KyutaiEngine

    with pytest.raises(EngineUnavailable, match=r"^kyutai engine unavailable: cannot load kyutai/some-repo offline"):
        KyutaiEngine()


def test_multi_speaker_checkpoint_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_moshi(monkeypatch, lambda repo: types.SimpleNamespace(lm_config={"n_q": 16}), multi_speaker=True)
    monkeypatch.setenv("KYUTAI_TTS_REPO", "kyutai/tts-1.6b-en_fr")
    from gpu_worker.engines.kyutai import KyutaiEngine

    with pytest.raises(EngineUnavailable, match="cannot take a voice from a sample"):
        KyutaiEngine()


def test_no_cuda_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_moshi(monkeypatch, lambda repo: types.SimpleNamespace(lm_config={"n_q": 16}))
    monkeypatch.setenv("KYUTAI_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from gpu_worker.engines.kyutai import KyutaiEngine

    with pytest.raises(EngineUnavailable, match="no CUDA device"):
        KyutaiEngine()


def test_assemble_codes_delays_audio_and_pads_codebooks() -> None:
    zero, delay = -1, 3
    audio_codes = torch.arange(2 * 4).reshape(1, 2, 4)  # 2 codebooks from the codec, 4 frames
    text = [7, 0, 3, 3, 3, 3, 3]  # delay + frames steps
    codes = assemble_codes(text, audio_codes, n_audio=3, delay=delay, zero=zero)
    assert codes.shape == (1, 4, 7)
    assert codes[0, 0].tolist() == text
    assert (codes[0, 1:, :delay] == zero).all()  # audio lags the text by `delay` steps
    assert torch.equal(codes[0, 1:3, delay:], audio_codes[0])
    assert (codes[0, 3] == zero).all()  # codebook the codec did not produce: masked out of the loss
    with pytest.raises(AssertionError):
        assemble_codes(text[:-1], audio_codes, n_audio=3, delay=delay, zero=zero)
