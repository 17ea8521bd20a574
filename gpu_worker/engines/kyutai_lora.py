"""LoRA speaker adaptation of Kyutai's TTS LM (moshi), on the GPU image only.

Batches are Mimi codes of each dataset item with the transcript's text tokens spread evenly on the
text stream (no word aligner in the worker: an approximation of the delayed-streams training target).
The loss is cross-entropy on the audio codebooks. The LoRA targets every nn.Linear of `lm.transformer`.
After saving, the adapter is unloaded so the cached engine serves later jobs with the base weights.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gpu_worker import audio, lora, scoring
from gpu_worker.schemas import LoraHyperparameters


class _LMLoss(nn.Module):
    """Wraps the LM so that forward(codes) returns the training loss, as lora.train_lora expects."""

    def __init__(self, lm: nn.Module, condition_tensors: Any) -> None:
        super().__init__()
        self.lm = lm
        self.condition_tensors = condition_tensors

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        out = self.lm(codes, condition_tensors=self.condition_tensors)
        target = codes[:, self.lm.audio_offset : self.lm.audio_offset + out.logits.shape[1]]
        mask = out.mask & (target >= 0)
        return nn.functional.cross_entropy(out.logits[mask].float(), target[mask])


def linear_targets(module: nn.Module, prefix: str = "lm.transformer") -> list[str]:
    return [name for name, m in module.named_modules() if isinstance(m, nn.Linear) and name.startswith(prefix)]


def train(
    engine: Any,
    paths: list[Path],
    transcripts: list[str],
    hp: LoraHyperparameters,
    work: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    tts = engine.tts
    lm, mimi, device = tts.lm, tts.mimi, tts.lm.device
    sr = int(mimi.sample_rate)
    batches = []
    progress("encoding dataset with Mimi")
    with torch.no_grad():
        for path, text in zip(paths, transcripts, strict=True):
            wav = torch.from_numpy(audio.load_mono(path, sr)).to(device)[None, None]
            audio_codes = mimi.encode(wav)  # [1, n_q, T]
            frames = audio_codes.shape[-1]
            text_row = torch.full((1, 1, frames), tts.machine.token_ids.pad, dtype=torch.long, device=device)
            tokens = tts.tokenizer.encode(text)
            positions = np.linspace(0, frames - 1, num=len(tokens), endpoint=False).astype(int)
            text_row[0, 0, positions] = torch.tensor(tokens, dtype=torch.long, device=device)
            batches.append({"codes": torch.cat([text_row, audio_codes], dim=1)})
    cfg_coef = engine.cfg["cfg_coef"] if engine.cfg["cfg_coef"] in tts.valid_cfg_conditionings else None
    attributes = tts.make_condition_attributes([], cfg_coef=cfg_coef)
    conditions = lm.condition_provider(lm.condition_provider.prepare([attributes]))
    wrapper = _LMLoss(lm, conditions)
    targets = linear_targets(wrapper)
    progress(f"training LoRA on {len(targets)} linear layers, {hp.steps} steps")
    peft_model, history = lora.train_lora(wrapper, targets, batches, hp)
    try:
        progress("evaluating: synthesizing with the adapter")
        embeddings = np.stack([engine.embed(audio.load_mono(p), audio.SAMPLE_RATE) for p in paths])
        centroid = scoring.robust_centroid(embeddings)
        eval_wav, eval_sr = engine.synthesize(transcripts[-1], paths[0])
        similarity = float(engine.embed(eval_wav, eval_sr) @ centroid)
        manifest = {"engine": "kyutai", "repo": engine.cfg["repo"], "target_modules": len(targets)}
        zip_bytes = lora.adapter_zip(peft_model, work, {"manifest.json": json.dumps(manifest).encode()})
    finally:
        peft_model.unload()  # restore the cached engine's base LM
    return {
        "loss_history": [round(x, 6) for x in history],
        "final_loss": round(history[-1], 6),
        "evaluation": {"speaker_similarity": round(similarity, 4), "method": "adapted synthesis vs dataset centroid"},
        "adapter_zip": zip_bytes,
        "evaluation_audio": audio.encode_opus(eval_wav, eval_sr),
    }
