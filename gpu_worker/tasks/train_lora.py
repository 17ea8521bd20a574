"""`train_lora`: dataset (audio + transcript) -> LoRA adapter zip, loss history and an evaluation."""

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gpu_worker import audio, features, lora, scoring, transfer
from gpu_worker.engines import Engine, get_engine
from voice_onboarding.contract.engines import KYUTAI, capabilities
from voice_onboarding.contract.gpu import TrainLoraInput, TrainLoraResult, output_name

MAX_FRAMES = 600  # ~10 s of log-mel per item keeps a CPU step cheap


def run(inp: TrainLoraInput, progress: Callable[[str], None]) -> dict:
    if not capabilities(inp.tts_type).can_train:
        raise ValueError(f"tts_type {inp.tts_type} cannot train adapters")
    progress(f"loading engine {inp.tts_type}")
    engine = get_engine(inp.tts_type)
    with tempfile.TemporaryDirectory(prefix="lora-") as tmp:
        work = Path(tmp)
        paths = []
        for n, item in enumerate(inp.dataset, 1):
            progress(f"downloading dataset item {n}/{len(inp.dataset)}")
            paths.append(transfer.download(str(item.url), work / f"item_{n}"))
        transcripts = [item.transcript for item in inp.dataset]
        if engine.name == KYUTAI:
            from gpu_worker.engines.kyutai_lora import train as train_kyutai

            result = train_kyutai(engine, paths, transcripts, inp.hyperparameters, work, progress)
        else:
            result = _train_cpu(engine, paths, transcripts, inp, work, progress)
        zip_bytes, eval_audio = result.pop("adapter_zip"), result.pop("evaluation_audio")
        progress("uploading adapter")
        transfer.upload(inp.outputs.adapter, zip_bytes, "application/zip", output=output_name("adapter"))
        if eval_audio is not None and inp.outputs.evaluation_audio is not None:
            transfer.upload(
                str(inp.outputs.evaluation_audio), eval_audio, "audio/ogg", output=output_name("evaluation_audio")
            )
            result["evaluation"]["evaluation_audio_uploaded"] = True
    return TrainLoraResult(
        tts_type=inp.tts_type, hyperparameters=inp.hyperparameters.model_dump(), **result
    ).model_dump()


def _train_cpu(
    engine: Engine,
    paths: list[Path],
    transcripts: list[str],
    inp: TrainLoraInput,
    work: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Speaker adaptation of the CPU text+speaker -> log-mel model (see lora.SpeakerAdaptedTTS)."""
    progress("extracting features")
    wavs = [audio.load_mono(p, features.SAMPLE_RATE) for p in paths]
    mels = [features.log_mel(w)[:MAX_FRAMES] for w in wavs]
    stacked = np.concatenate(mels)
    mean, std = stacked.mean(0), stacked.std(0) + 1e-5  # per-bin normalisation, stored with the adapter
    embeddings = np.stack([engine.embed(w, features.SAMPLE_RATE) for w in wavs])
    # Hold the last item out when there are enough items: its loss is the evaluation proxy.
    n_train = len(paths) - 1 if len(paths) >= 3 else len(paths)
    centroid = scoring.robust_centroid(embeddings[:n_train])
    speaker = torch.from_numpy(centroid.astype(np.float32))

    def batch(i: int) -> lora.Batch:
        mel = torch.from_numpy((mels[i] - mean) / std)
        return {"chars": torch.from_numpy(features.char_ids(transcripts[i])), "speaker": speaker, "mel": mel}

    train_batches = [batch(i) for i in range(n_train)]
    eval_batch = batch(len(paths) - 1)
    model = lora.SpeakerAdaptedTTS(speaker_dim=speaker.shape[0], seed=inp.hyperparameters.seed)
    with torch.no_grad():
        base_eval = float(model(**eval_batch))
    progress(f"training LoRA: {inp.hyperparameters.steps} steps on {n_train} items")
    params = lora.add_lora(model, inp.hyperparameters)
    model.train()
    history = lora.train(params, lambda b: model(**b), train_batches, inp.hyperparameters, progress)
    model.eval()

    progress("evaluating")
    with torch.no_grad():
        adapted_eval = float(model(**eval_batch))
        pred = model.predict(eval_batch["chars"], speaker, eval_batch["mel"].shape[0]).numpy() * std + mean
    eval_wav = features.mel_to_audio(pred).astype(np.float32)
    try:
        similarity: float | None = float(engine.embed(eval_wav, features.SAMPLE_RATE) @ centroid)
    except ValueError:
        similarity = None  # Griffin-Lim output judged non-speech by the VAD
    manifest = {
        "engine": engine.name,
        "base_model": {"class": "gpu_worker.lora.SpeakerAdaptedTTS", **model.config},
        "lora": {"implementation": "moshi.modules.lora (every nn.Linear)", "rank": inp.hyperparameters.rank,
                 "scaling": lora.scaling(inp.hyperparameters), "dropout": "not applied (moshi LoRALinear has none)"},
        "features": {"sample_rate": features.SAMPLE_RATE, "n_mels": features.N_MELS, "hop": features.HOP},
        "mel_mean": mean.tolist(),
        "mel_std": std.tolist(),
        "speaker_embedding": centroid.tolist(),
    }  # fmt: skip
    adapter_dir = lora.save_adapter(model, inp.hyperparameters, work / "adapter", {"model": "SpeakerAdaptedTTS"})
    zip_bytes = lora.zip_dir(adapter_dir, {"manifest.json": json.dumps(manifest).encode()})
    return {
        "loss_history": [round(x, 6) for x in history],
        "final_loss": round(history[-1], 6),
        "evaluation": {
            # Griffin-Lim audio of a tiny regressor: a weak, but real, similarity measure.
            "speaker_similarity": None if similarity is None else round(similarity, 4),
            "heldout_loss": round(adapted_eval, 6),
            "heldout_loss_base": round(base_eval, 6),
            "heldout_item": len(paths) if n_train < len(paths) else None,
            "method": "held-out log-mel MSE (adapter vs frozen base) + resemblyzer similarity of the "
            "Griffin-Lim rendering vs the training centroid; resemblyzer cannot synthesize",
        },
        "adapter_zip": zip_bytes,
        "evaluation_audio": audio.encode_opus(eval_wav, features.SAMPLE_RATE),
    }
