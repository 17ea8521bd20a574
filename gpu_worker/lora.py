"""LoRA training with peft, shared by every engine, plus the CPU speaker-adaptation model.

`train_lora` is engine-agnostic: the model's forward takes a batch dict and returns the loss.
Kyutai wraps its LM that way (engines/kyutai_lora.py); on CPU the model is `SpeakerAdaptedTTS`,
a tiny text+speaker -> log-mel regressor whose base weights are a pure function of a seed (no
pretrained tiny TTS exists), frozen, so the adapter alone carries what is learned for the speaker.
"""

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from gpu_worker.features import N_MELS, VOCAB
from voice_onboarding.contract.gpu import LoraHyperparameters

Batch = dict[str, torch.Tensor]


def train_lora(
    model: nn.Module,
    target_modules: Sequence[str],
    batches: Sequence[Batch],
    hyperparameters: LoraHyperparameters,
) -> tuple[PeftModel, list[float]]:
    """Wraps `model` with LoRA on `target_modules` and trains only the adapter; returns it and the loss per step."""
    torch.manual_seed(hyperparameters.seed)
    config = LoraConfig(
        r=hyperparameters.rank,
        lora_alpha=hyperparameters.alpha,
        lora_dropout=hyperparameters.dropout,
        target_modules=list(target_modules),
    )
    peft_model = get_peft_model(model, config)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hyperparameters.learning_rate, weight_decay=0.0)
    peft_model.train()
    history: list[float] = []
    for step in range(hyperparameters.steps):
        loss = peft_model(**batches[step % len(batches)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        history.append(float(loss.detach()))
    peft_model.eval()
    return peft_model, history


def adapter_zip(peft_model: PeftModel, workdir: Path, extra_files: dict[str, bytes] | None = None) -> bytes:
    """`save_pretrained` (adapter_config.json + adapter_model.safetensors) zipped, plus extra files."""
    out = workdir / "adapter"
    peft_model.save_pretrained(str(out))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(out.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(out).as_posix())
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

    @staticmethod
    def target_modules() -> list[str]:
        return ["speaker_proj", "text_proj", "decoder.0", "decoder.2"]

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
