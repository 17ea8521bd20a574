"""LoRA speaker adaptation of Kyutai's TTS LM (moshi), on the GPU image only.

Training sequence per dataset item, in the layout the delayed-streams TTS generates:
- audio rows: the item's Mimi codes, delayed by `tts.delay_steps` (the audio lags the text), codebooks
  the codec does not produce padded with the LM's zero token (masked out of the loss);
- text row: the transcript's words fed through moshi's own TTS state machine (`tts.machine.process`),
  asked for a new word at evenly spread frames. No word aligner runs in the worker, so word timing
  is an approximation; the token layout (new-word markers, padding rules, lookahead stream) is exact.
The loss is cross-entropy on the audio codebooks. peft wraps the transformer's feed-forward and
self-attention output projections (see `lora_targets`). After saving, the adapter is unloaded so the
cached engine serves later jobs with the base weights.
"""

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gpu_worker import audio, lora, scoring
from voice_onboarding.contract.gpu import LoraHyperparameters

MAX_SECONDS = 30.0  # per dataset item; longer items are cut (memory grows with the sequence)


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


def lora_targets(module: nn.Module, prefix: str = "lm.transformer.") -> list[str]:
    """Names of the nn.Linear layers under `prefix` that peft can wrap without breaking moshi.

    Left out: attention `in_projs` (moshi's streaming state accepts only nn.Linear or its own LoRA
    class there, and cross-attention slices their weight directly) and all of `cross_attention`.
    Kept: feed-forward (`gating.linear_in/out` or `linear1/2`) and self-attention `out_projs`.
    """
    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, nn.Linear)
        and name.startswith(prefix)
        and ".in_projs." not in name
        and ".cross_attention." not in name
    ]


def text_stream(machine: Any, entries: Sequence[Any], audio_frames: int, total: int) -> list[int]:
    """Text tokens for `total` steps: words requested at evenly spread steps over the audio's frames.

    The state machine may delay a word (its tokens still being fed, forced padding) or force one
    (too long without a word); the schedule follows what it actually consumed.
    """
    ids = machine.token_ids
    starts = np.linspace(0, max(audio_frames - 1, 0), num=max(len(entries), 1), endpoint=False).astype(int)
    state = machine.new_state(list(entries))
    row: list[int] = []
    consumed = 0
    for step in range(total):
        wanted = ids.new_word if consumed < len(entries) and step >= starts[consumed] else ids.pad
        token, new_word = machine.process(step, state, wanted)
        consumed += int(new_word)
        row.append(token)
    return row


def assemble_codes(text: list[int], audio_codes: torch.Tensor, n_audio: int, delay: int, zero: int) -> torch.Tensor:
    """[1, 1 + n_audio, delay + T] training codes from text tokens and [1, q, T] Mimi codes."""
    _, q, frames = audio_codes.shape
    if q < n_audio:
        pad = torch.full((1, n_audio - q, frames), zero, dtype=torch.long, device=audio_codes.device)
        audio_codes = torch.cat([audio_codes, pad], dim=1)
    lead = torch.full((1, n_audio, delay), zero, dtype=torch.long, device=audio_codes.device)
    audio_rows = torch.cat([lead, audio_codes.long()], dim=-1)
    assert len(text) == audio_rows.shape[-1], (len(text), audio_rows.shape)
    text_row = torch.tensor(text, dtype=torch.long, device=audio_codes.device)[None, None]
    return torch.cat([text_row, audio_rows], dim=1)


def _batches(engine: Any, paths: list[Path], transcripts: list[str]) -> list[dict[str, torch.Tensor]]:
    tts = engine.tts
    lm, mimi = tts.lm, tts.mimi
    sr = int(mimi.sample_rate)
    batches = []
    with torch.no_grad():
        for path, transcript in zip(paths, transcripts, strict=True):
            wav = audio.load_mono(path, sr)[: int(MAX_SECONDS * sr)]
            audio_codes = mimi.encode(torch.from_numpy(wav).to(lm.device)[None, None])  # [1, q, T]
            frames = audio_codes.shape[-1]
            total = frames + tts.delay_steps
            text = text_stream(tts.machine, tts.prepare_script([transcript]), frames, total)
            codes = assemble_codes(text, audio_codes, lm.num_audio_codebooks, tts.delay_steps, lm.zero_token_id)
            batches.append({"codes": codes})
    return batches


def train(
    engine: Any,
    paths: list[Path],
    transcripts: list[str],
    hp: LoraHyperparameters,
    work: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    tts = engine.tts
    lm = tts.lm
    if not tts.multistream:
        lm.dep_q = tts.n_q  # what generate() sets: the depformer predicts the codebooks in use
    progress("encoding dataset with Mimi")
    batches = _batches(engine, paths, transcripts)
    conditions = None
    if lm.condition_provider is not None:
        attributes = tts.make_condition_attributes([], cfg_coef=None)
        conditions = lm.condition_provider.prepare_and_provide([attributes])
    wrapper = _LMLoss(lm, conditions)
    targets = lora_targets(wrapper)
    progress(f"training LoRA on {len(targets)} linear layers, {hp.steps} steps")
    peft_model, history = lora.train_lora(wrapper, targets, batches, hp)
    try:
        progress("evaluating: synthesizing with and without the adapter")
        embeddings = np.stack([engine.embed(audio.load_mono(p), audio.SAMPLE_RATE) for p in paths])
        centroid = scoring.robust_centroid(embeddings)
        eval_wav, eval_sr = engine.synthesize(transcripts[-1], paths[0])
        similarity = float(engine.embed(eval_wav, eval_sr) @ centroid)
        with peft_model.disable_adapter():
            base_wav, base_sr = engine.synthesize(transcripts[-1], paths[0])
        base_similarity = float(engine.embed(base_wav, base_sr) @ centroid)
        manifest = {"engine": engine.name, "repo": engine.cfg["repo"], "n_q": tts.n_q, "target_modules": targets}
        zip_bytes = lora.adapter_zip(peft_model, work, {"manifest.json": json.dumps(manifest).encode()})
    finally:
        peft_model.unload()  # restore the cached engine's base LM
    return {
        "loss_history": [round(x, 6) for x in history],
        "final_loss": round(history[-1], 6),
        "evaluation": {
            "speaker_similarity": round(similarity, 4),
            "speaker_similarity_base": round(base_similarity, 4),
            "method": "resemblyzer cosine of synthesis (last transcript, first item as prompt) vs dataset centroid, "
            "with and without the adapter",
        },
        "adapter_zip": zip_bytes,
        "evaluation_audio": audio.encode_opus(eval_wav, eval_sr),
    }
