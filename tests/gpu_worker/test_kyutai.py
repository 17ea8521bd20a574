"""Kyutai engine: every way it can be unavailable fails with a reason; LoRA target selection and codes layout.

moshi, its weights and a GPU are absent here, so the loading branches run against stand-in moshi modules.
"""

import sys
import types

import pytest
import torch
from gpu_worker.engines.base import EngineUnavailable
from gpu_worker.engines.kyutai_lora import assemble_codes, lora_targets
from gpu_worker.lora import train_lora
from torch import nn

from voice_onboarding.contract.gpu import LoraHyperparameters


def _install_fake_moshi(monkeypatch: pytest.MonkeyPatch, from_hf_repo, multi_speaker: bool = False) -> None:
    loaders = types.ModuleType("moshi.models.loaders")
    loaders.CheckpointInfo = types.SimpleNamespace(from_hf_repo=from_hf_repo)
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
    _install_fake_moshi(monkeypatch, lambda repo: object(), multi_speaker=True)
    monkeypatch.setenv("KYUTAI_TTS_REPO", "kyutai/tts-1.6b-en_fr")
    from gpu_worker.engines.kyutai import KyutaiEngine

    with pytest.raises(EngineUnavailable, match="cannot take a voice from a sample"):
        KyutaiEngine()


def test_no_cuda_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake_moshi(monkeypatch, lambda repo: object())
    monkeypatch.setenv("KYUTAI_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from gpu_worker.engines.kyutai import KyutaiEngine

    with pytest.raises(EngineUnavailable, match="no CUDA device"):
        KyutaiEngine()


class _Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.in_projs = nn.ModuleList([nn.Linear(dim, 3 * dim, bias=False)])
        self.out_projs = nn.ModuleList([nn.Linear(dim, dim, bias=False)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.in_projs[0](x).chunk(3, dim=-1)
        return self.out_projs[0](torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v)


class _Gating(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear_in = nn.Linear(dim, 2 * dim, bias=False)
        self.linear_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.linear_in(x).chunk(2, dim=-1)
        return self.linear_out(nn.functional.silu(a) * b)


class _Layer(nn.Module):
    """Same module names as moshi's StreamingTransformerLayer (self_attn, cross_attention, gating)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.self_attn, self.cross_attention, self.gating = _Attention(dim), _Attention(dim), _Gating(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(x)
        x = x + self.cross_attention(x)
        return x + self.gating(x)


class _LM(nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.layers = nn.ModuleList([_Layer(dim), _Layer(dim)])
        self.depformer_in = nn.Linear(dim, dim)  # outside lm.transformer: never targeted


class _Wrapper(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lm = _LM()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for layer in self.lm.transformer.layers:
            x = layer(x)
        return nn.functional.mse_loss(x, y)


def test_lora_targets_skip_in_projs_and_cross_attention_and_train() -> None:
    torch.manual_seed(0)
    model = _Wrapper()
    targets = lora_targets(model)
    assert sorted(targets) == sorted(
        f"lm.transformer.layers.{i}.{n}"
        for i in range(2)
        for n in ("self_attn.out_projs.0", "gating.linear_in", "gating.linear_out")
    )
    x, y = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    peft_model, history = train_lora(model, targets, [{"x": x, "y": y}], LoraHyperparameters(rank=4, steps=30))
    assert history[-1] < history[0]
    layer = peft_model.base_model.model.lm.transformer.layers[0]
    # moshi's streaming code checks these classes; they must stay plain nn.Linear.
    assert type(layer.self_attn.in_projs[0]) is nn.Linear and type(layer.cross_attention.out_projs[0]) is nn.Linear
    assert type(layer.gating.linear_in) is not nn.Linear


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
