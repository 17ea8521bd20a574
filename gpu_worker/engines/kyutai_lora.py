"""LoRA speaker adaptation of Kyutai's DSM TTS LM with moshi's own LoRA, saved in the format its loader reads.

Training sequence per dataset item, in the layout the delayed-streams TTS generates:
- audio rows: the item's Mimi codes, delayed by `tts.delay_steps` (the audio lags the text), codebooks
  the codec does not produce padded with the LM's zero token (masked out of the loss);
- text row: the transcript's words fed through moshi's own TTS state machine (`tts.machine.process`),
  asked for a new word at evenly spread frames. No word aligner runs in the worker, so word timing
  is an approximation; the token layout (new-word markers, padding rules, lookahead stream) is exact.
The loss is cross-entropy on the audio codebooks. Every nn.Linear of the LM becomes moshi's LoRALinear
(`replace_all_linear_with_lora`, exactly what `get_moshi_lm(lora_weights=...)` does at load time), so the
saved `lora.safetensors` + `config.json` load back through `CheckpointInfo(lora_weights=...)`.

Conditioning: None when the LM has no fuser (its forward asserts that); otherwise the condition provider's
output, computed under no_grad at every step (reusing one graph across steps fails at the second backward).
The last dataset item is held out (>= 2 items): its loss with and without the adapter is the evaluation,
with the similarity of its transcript spoken by the adapter *as reloaded by moshi's loader* vs the base.
The cached engine's LM gets its plain linears back afterwards, so later jobs use the base weights.
"""

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gpu_worker import audio, lora, scoring, voices
from voice_onboarding.contract.gpu import LoraHyperparameters

MAX_SECONDS = 30.0  # per dataset item; longer items are cut (memory grows with the sequence)


def lm_loss(lm: nn.Module, codes: torch.Tensor, condition_tensors: Any) -> torch.Tensor:
    """Cross-entropy of the audio codebooks of `codes` [1, 1 + n_audio, T] (valid positions only)."""
    out = lm(codes, condition_tensors=condition_tensors)
    target = codes[:, lm.audio_offset : lm.audio_offset + out.logits.shape[1]]
    mask = out.mask & (target >= 0)
    return nn.functional.cross_entropy(out.logits[mask].float(), target[mask])


def conditions(engine: Any) -> Any:
    """The LM's condition tensors for training: None without a fuser, else fresh and gradient-free."""
    lm = engine.tts.lm
    if lm.fuser is None:
        return None
    with torch.no_grad():
        return lm.condition_provider.prepare_and_provide(engine.condition_attributes())


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
    n_train = len(batches) - 1 if len(batches) >= 2 else len(batches)
    heldout = batches[-1]
    with torch.no_grad():
        base_eval = float(lm_loss(lm, heldout["codes"], conditions(engine)))
    params = lora.add_lora(lm, hp)
    try:
        progress(f"training LoRA (rank {hp.rank}) on {len(params) // 2} linear layers, {hp.steps} steps")
        lm.train()
        history = lora.train(
            params, lambda b: lm_loss(lm, b["codes"], conditions(engine)), batches[:n_train], hp, progress
        )
        lm.eval()
        with torch.no_grad():
            adapted_eval = float(lm_loss(lm, heldout["codes"], conditions(engine)))
        adapter_dir = lora.save_adapter(lm, hp, work / "adapter", engine.info.raw_config)
    finally:
        lora.remove_lora(lm)  # the cached engine serves later jobs with its base weights
        for p in lm.parameters():
            p.requires_grad_(False)

    progress("evaluating: the adapter reloaded by moshi's loader vs the base model")
    embeddings = np.stack([engine.embed(audio.load_mono(p), audio.SAMPLE_RATE) for p in paths[:n_train]])
    centroid = scoring.robust_centroid(embeddings)
    voice_files = voices.make_voice_files(engine, paths[0], work / "eval_voice")
    text = transcripts[-1]
    adapted = type(engine)(adapter=adapter_dir)  # moshi's loader: CheckpointInfo(lora_weights=...)
    eval_wav, eval_sr = adapted.synthesize(text, adapted.load_voice(voice_files.artifact_path))
    base_wav, base_sr = engine.synthesize(text, engine.load_voice(voice_files.artifact_path))
    similarity = _similarity(engine, eval_wav, eval_sr, centroid)
    base_similarity = _similarity(engine, base_wav, base_sr, centroid)
    manifest = {
        "engine": engine.name,
        "base_model": engine.model_info(),
        "format": "moshi LoRA: lora.safetensors (lora_A/lora_B of every LM linear) + config.json (lora, "
        "lora_rank, lora_scaling)",
        "load": "CheckpointInfo.from_hf_repo(base_repo, config_path='config.json', lora_weights='lora.safetensors')",
        "rank": hp.rank,
        "scaling": lora.scaling(hp),
        "dropout": "not applied (moshi LoRALinear has none)",
    }
    zip_bytes = lora.zip_dir(adapter_dir, {"manifest.json": json.dumps(manifest, indent=2).encode()})
    return {
        "loss_history": [round(x, 6) for x in history],
        "final_loss": round(history[-1], 6),
        "evaluation": {
            "heldout_loss": round(adapted_eval, 6),
            "heldout_loss_base": round(base_eval, 6),
            "heldout_item": len(paths) if n_train < len(paths) else None,
            "speaker_similarity": None if similarity is None else round(similarity, 4),
            "speaker_similarity_base": None if base_similarity is None else round(base_similarity, 4),
            "method": "audio-codebook cross-entropy of the held-out item with vs without the adapter; resemblyzer "
            "cosine vs the training items' centroid of its transcript spoken (first item as the voice) by the "
            "adapter as reloaded by moshi's loader, and by the base model",
        },
        "adapter_zip": zip_bytes,
        "evaluation_audio": audio.encode_opus(eval_wav, eval_sr),
    }


def _similarity(engine: Any, wav: np.ndarray, sr: int, centroid: np.ndarray) -> float | None:
    try:
        return float(engine.embed(wav, sr) @ centroid)
    except ValueError:  # no speech found by the VAD
        return None
