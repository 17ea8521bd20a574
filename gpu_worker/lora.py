"""LoRA with moshi's own implementation (`moshi.modules.lora`), for every engine that trains.

Why moshi's and not peft's: an adapter for Kyutai's DSM TTS is only useful in the format moshi's loader
reads (`CheckpointInfo(lora_weights=...)`: every nn.Linear of the LM replaced by `LoRALinear`, a safetensors
file of the `lora_A`/`lora_B` weights, and `lora`, `lora_rank`, `lora_scaling` in the model's config.json).
Using one implementation everywhere also keeps peft/transformers (and their huggingface-hub >= 1 pins) out
of the worker. moshi's LoRALinear has no dropout: the `dropout` hyperparameter is recorded, not applied.

Also here: the CPU speaker-adaptation model (`SpeakerAdaptedTTS`) that the `resemblyzer` engine trains.
"""

import contextlib
import io
import json
import math
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gpu_worker.features import N_MELS, VOCAB
from voice_onboarding.contract.gpu import LoraHyperparameters

Batch = dict[str, torch.Tensor]
WEIGHTS_NAME = "lora.safetensors"
CONFIG_NAME = "config.json"


def scaling(hp: LoraHyperparameters) -> float:
    """peft's alpha / rank convention, as moshi's `lora_scaling`."""
    return hp.alpha / hp.rank


def add_lora(model: nn.Module, hp: LoraHyperparameters) -> list[nn.Parameter]:
    """Replaces every nn.Linear of `model` with moshi's LoRALinear (as its loader does), freezes the rest.

    lora_B starts at zero, so the adapted model starts as the base model. Returns the trainable parameters.
    """
    from moshi.modules.lora import LoRALinear, replace_all_linear_with_lora

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(hp.seed)
    replace_all_linear_with_lora(model, hp.rank, scaling(hp))
    params = []
    for p in model.parameters():
        p.requires_grad_(False)
    for module in model.modules():
        if isinstance(module, LoRALinear):
            nn.init.kaiming_uniform_(module.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(module.lora_B.weight)
            for p in (module.lora_A.weight, module.lora_B.weight):
                p.requires_grad_(True)
                params.append(p)
    torch.random.set_rng_state(generator_state)
    return params


def remove_lora(model: nn.Module) -> None:
    """Puts each LoRALinear's frozen base linear back: the model is exactly the base again."""
    from moshi.modules.lora import LoRALinear

    for name, child in list(model.named_children()):
        if isinstance(child, LoRALinear):
            setattr(model, name, child.frozen_W)
        else:
            remove_lora(child)


@contextlib.contextmanager
def disabled(model: nn.Module) -> Iterator[None]:
    """The base model's outputs while the adapter stays in place (scaling 0)."""
    from moshi.modules.lora import LoRALinear

    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    saved = [m.scaling for m in layers]
    for m in layers:
        m.scaling = 0.0
    try:
        yield
    finally:
        for m, s in zip(layers, saved, strict=True):
            m.scaling = s


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter: what moshi's loader expects in `lora_weights`."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if "lora_" in k}


def train(
    params: Sequence[nn.Parameter],
    loss_fn: Callable[[Batch], torch.Tensor],
    batches: Sequence[Batch],
    hp: LoraHyperparameters,
    progress: Callable[[str], None] | None = None,
) -> list[float]:
    """AdamW on the adapter only (grad-norm clip 1.0), cycling through `batches`; the loss per step.
    `progress` hears about every hundredth of the run: the user sees the step, and a cancelled job stops
    here (the worker's progress raises once the API says the run is over)."""
    torch.manual_seed(hp.seed)
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=0.0)
    history: list[float] = []
    for step in range(hp.steps):
        loss = loss_fn(batches[step % len(batches)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        history.append(float(loss.detach()))
        if progress is not None and (step + 1) % max(1, hp.steps // 100) == 0:
            progress(f"training step {step + 1}/{hp.steps}, loss {history[-1]:.3f}")
    return history


def save_adapter(model: nn.Module, hp: LoraHyperparameters, dest: Path, base_config: dict[str, Any]) -> Path:
    """`lora.safetensors` + `config.json` (the base config with lora, lora_rank, lora_scaling) under `dest`."""
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    save_file(lora_state_dict(model), str(dest / WEIGHTS_NAME))
    config = {**base_config, "lora": True, "lora_rank": hp.rank, "lora_scaling": scaling(hp)}
    (dest / CONFIG_NAME).write_text(json.dumps(config, indent=2))
    return dest


def zip_dir(directory: Path, extra_files: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(directory.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(directory).as_posix())
        for name, data in (extra_files or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


class SpeakerAdaptedTTS(nn.Module):
    """Chars + speaker embedding -> log-mel frames, with a uniform char-to-frame alignment.

    Why uniform alignment: with no aligner on CPU, frame t reads character floor(t * L / T); the
    relative position inside the character and in the utterance are extra inputs.
    """

    def __init__(self, speaker_dim: int = 256, hidden: int = 128, seed: int = 0) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # the base is reproducible from the seed stored with the adapter
        self.char_emb = nn.Embedding(VOCAB, hidden)
        self.speaker_proj = nn.Linear(speaker_dim, hidden)
        self.text_proj = nn.Linear(hidden + 2, hidden)
        self.decoder = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, N_MELS))
        torch.random.set_rng_state(generator_state)
        self.config: dict[str, Any] = {"speaker_dim": speaker_dim, "hidden": hidden, "seed": seed}

    def predict(self, chars: torch.Tensor, speaker: torch.Tensor, frames: int) -> torch.Tensor:
        """chars [L] int64, speaker [speaker_dim] -> [frames, N_MELS]."""
        pos = torch.arange(frames, dtype=torch.float32) * len(chars) / frames
        idx = pos.floor().long().clamp(max=len(chars) - 1)
        feats = torch.cat([self.char_emb(chars[idx]), (pos - idx)[:, None], (pos / len(chars))[:, None]], dim=-1)
        text = torch.tanh(self.text_proj(feats))
        spk = torch.tanh(self.speaker_proj(speaker)).expand(frames, -1)
        return self.decoder(torch.cat([text, spk], dim=-1))

    def forward(self, chars: torch.Tensor, speaker: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """MSE between predicted and target (normalised) log-mel frames."""
        return nn.functional.mse_loss(self.predict(chars, speaker, mel.shape[0]), mel)
