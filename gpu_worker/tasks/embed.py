"""`embed`: per sample, the engine's voice artifact, test sentences spoken from it, scores, the embedding zip.

Embedding zip (docs/pipeline-contract.md): `manifest.json` (engine, model id and revision, sample rate,
artifact format, per-sample files and scores), for engines that speak `samples/<i>/voice.safetensors` (the
artifact a Kyutai runtime loads) and `samples/<i>/prompt.wav` (the trimmed prompt it was made from), and for
every engine `similarity/sample_<i>.npy` + `similarity/centroid.npy` (resemblyzer d-vectors: what the scores
are computed on, not a voice).
"""

import io
import json
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker import audio, scoring, transfer, voices
from gpu_worker.engines import Engine, speaker_encoder
from voice_onboarding.contract.engines import capabilities
from voice_onboarding.contract.gpu import (
    EmbedInput,
    EmbedResult,
    SampleScore,
    TestSampleOut,
    output_name,
    test_filename,
)
from voice_onboarding.contract.quality import MIXED_WINDOW_SECONDS

NO_SYNTHESIS_NOTE = "engine {name} cannot synthesize: no test samples; scores use sample-vs-centroid similarity only"
SIMILARITY_ENCODER = "resemblyzer VoiceEncoder (GE2E, 16 kHz), L2-normalised"


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array.astype(np.float32))
    return buf.getvalue()


def _similarity(engine: Engine, wav: np.ndarray, sr: int, reference: np.ndarray) -> float:
    try:
        return float(engine.embed(wav, sr) @ reference)
    except ValueError:  # the speaker encoder's VAD found no speech in the test sample: it carries no voice
        return 0.0


def run(inp: EmbedInput, progress: Callable[[str], None]) -> dict:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    progress(f"loading engine {inp.tts_type}")
    engine = voices.engine_for(inp.tts_type, inp.language)
    timings["load_model"] = time.perf_counter() - t

    with tempfile.TemporaryDirectory(prefix="embed-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        paths: list[Path] = []
        for n, sample in enumerate(inp.samples, 1):
            progress(f"downloading sample {n}/{len(inp.samples)}")
            paths.append(transfer.download(str(sample.url), work / f"sample_{sample.index}"))
        timings["download"] = time.perf_counter() - t

        t = time.perf_counter()
        embeddings, windows = [], []
        for n, (sample, path) in enumerate(zip(inp.samples, paths, strict=True), 1):
            progress(f"embedding sample {n}/{len(inp.samples)}")
            wav = audio.load_mono(path)
            try:
                embeddings.append(engine.embed(wav, audio.SAMPLE_RATE))
            except ValueError as exc:
                raise ValueError(f"sample {sample.index}: {exc}") from exc
            # Windows of the sample, judged by the same speaker encoder: a second speaker inside a sample.
            windows.append(speaker_encoder.embed_windows(wav, audio.SAMPLE_RATE, MIXED_WINDOW_SECONDS))
        emb = scoring.normalize(np.stack(embeddings))
        mixed = scoring.mixed_speakers([s.index for s in inp.samples], windows, MIXED_WINDOW_SECONDS)
        timings["embed"] = time.perf_counter() - t

        test_sims: dict[int, float] = {}
        test_samples: list[TestSampleOut] = []
        artifacts: dict[int, voices.VoiceFiles] = {}
        if engine.can_synthesize:
            t = time.perf_counter()
            for n, (sample, path) in enumerate(zip(inp.samples, paths, strict=True), 1):
                progress(f"making voice {n}/{len(inp.samples)}")
                try:
                    files = voices.make_voice_files(engine, path, work / "voices" / str(sample.index))
                except ValueError as exc:
                    raise ValueError(f"sample {sample.index}: {exc}") from exc
                artifacts[sample.index] = files
            timings["artifact"] = time.perf_counter() - t
            t = time.perf_counter()
            for i, sample in enumerate(inp.samples):
                # Spoken from the stored artifact reloaded from its file: each test sample proves its artifact.
                voice = voices.reload_voice(engine, artifacts[sample.index].artifact_path)
                sims = []
                for j, sentence in enumerate(inp.sentences, 1):
                    name = test_filename(sample.index, j)
                    progress(f"synthesizing {name}")
                    wav, sr = engine.synthesize(sentence, voice)
                    sims.append(_similarity(engine, wav, sr, emb[i]))
                    if name in inp.outputs.test_samples:
                        transfer.upload(
                            str(inp.outputs.test_samples[name]),
                            audio.encode_opus(wav, sr),
                            "audio/ogg",
                            output=output_name("test_samples", name),
                        )
                        test_samples.append(TestSampleOut(sample_index=sample.index, sentence_index=j, filename=name))
                if sims:
                    test_sims[sample.index] = float(np.mean(sims))
            timings["synthesize"] = time.perf_counter() - t

        progress("scoring")
        indices = [s.index for s in inp.samples]
        qualities = [s.quality for s in inp.samples]
        scored, centroid = scoring.score_samples(indices, emb, qualities, test_sims or None, mixed)
        note = None if engine.can_synthesize else NO_SYNTHESIS_NOTE.format(name=engine.name)
        t = time.perf_counter()
        progress("uploading embedding zip")
        data = _zip(engine, inp, emb, centroid, scored, artifacts, note)
        transfer.upload(inp.outputs.embedding_zip, data, "application/zip", output=output_name("embedding_zip"))
        timings["upload"] = time.perf_counter() - t
    return EmbedResult(
        tts_type=inp.tts_type,
        sample_scores=[SampleScore(**vars(s)) for s in scored],
        test_samples=test_samples,
        preferred_sample_index=scoring.preferred(scored),
        embedding_dim=int(emb.shape[1]),
        timings={k: round(v, 3) for k, v in timings.items()},
        note=note,
    ).model_dump()


def _zip(
    engine: Engine,
    inp: EmbedInput,
    emb: np.ndarray,
    centroid: np.ndarray,
    scored: list[scoring.Scored],
    artifacts: dict[int, voices.VoiceFiles],
    note: str | None,
) -> bytes:
    cap = capabilities(inp.tts_type)
    samples: list[dict[str, Any]] = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for sample, vector in zip(inp.samples, emb, strict=True):
            zf.writestr(f"similarity/sample_{sample.index}.npy", _npy(vector))
        zf.writestr("similarity/centroid.npy", _npy(centroid))
        for s in scored:
            entry: dict[str, Any] = {**vars(s), "similarity_vector": f"similarity/sample_{s.sample_index}.npy"}
            files = artifacts.get(s.sample_index)
            if files is not None:
                base = f"samples/{s.sample_index}/"
                zf.write(files.artifact_path, base + engine.artifact_name)
                zf.write(files.prompt_path, base + voices.PROMPT_NAME)
                entry |= {
                    "artifact": base + engine.artifact_name,
                    "prompt": base + voices.PROMPT_NAME,
                    "prompt_info": voices.prompt_manifest(files),
                }
            samples.append(entry)
        manifest = {
            "engine": inp.tts_type,
            "model": engine.model_info(),
            "sample_rate": engine.sample_rate if artifacts else cap.sample_rate,
            "artifact_format": cap.artifact_format,
            "similarity": {"encoder": SIMILARITY_ENCODER, "dim": int(emb.shape[1]),
                           "centroid": "coordinate-wise median (mean if < 3) of the unflagged samples' vectors"},
            "preferred_sample_index": scored[0].sample_index,
            "samples": samples,
            "note": note,
        }  # fmt: skip
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    return buf.getvalue()
