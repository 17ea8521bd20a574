"""`embed`: download samples, embed, (synthesize test sentences), score, upload the embedding zip."""

import io
import json
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gpu_worker import audio, scoring, transfer
from gpu_worker.engines import get_engine
from voice_onboarding.contract.gpu import EmbedInput, EmbedResult, SampleScore, TestSampleOut, test_filename

NO_SYNTHESIS_NOTE = "engine {name} cannot synthesize: no test samples; scores use sample-vs-centroid similarity only"


def _zip(indices: list[int], embeddings: np.ndarray, centroid: np.ndarray, manifest: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for idx, emb in zip(indices, embeddings, strict=True):
            zf.writestr(f"sample_{idx}.npy", _npy(emb))
        zf.writestr("centroid.npy", _npy(centroid))
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    return buf.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array.astype(np.float32))
    return buf.getvalue()


def run(inp: EmbedInput, progress: Callable[[str], None]) -> dict:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    progress(f"loading engine {inp.tts_type}")
    engine = get_engine(inp.tts_type)
    timings["load_model"] = time.perf_counter() - t

    with tempfile.TemporaryDirectory(prefix="embed-") as tmp:
        t = time.perf_counter()
        paths: list[Path] = []
        for n, sample in enumerate(inp.samples, 1):
            progress(f"downloading sample {n}/{len(inp.samples)}")
            paths.append(transfer.download(str(sample.url), Path(tmp) / f"sample_{sample.index}"))
        timings["download"] = time.perf_counter() - t

        t = time.perf_counter()
        embeddings = []
        for n, (sample, path) in enumerate(zip(inp.samples, paths, strict=True), 1):
            progress(f"embedding sample {n}/{len(inp.samples)}")
            try:
                embeddings.append(engine.embed(audio.load_mono(path), audio.SAMPLE_RATE))
            except ValueError as exc:
                raise ValueError(f"sample {sample.index}: {exc}") from exc
        emb = np.stack(embeddings)
        timings["embed"] = time.perf_counter() - t

        test_sims: dict[int, float] = {}
        test_samples: list[TestSampleOut] = []
        if engine.can_synthesize and inp.sentences:
            t = time.perf_counter()
            centroid = scoring.robust_centroid(emb)
            for sample, path in zip(inp.samples, paths, strict=True):
                sims = []
                for j, sentence in enumerate(inp.sentences, 1):
                    name = test_filename(sample.index, j)
                    progress(f"synthesizing {name}")
                    wav, sr = engine.synthesize(sentence, path)
                    sims.append(float(engine.embed(wav, sr) @ centroid))
                    if name in inp.outputs.test_samples:
                        transfer.upload(str(inp.outputs.test_samples[name]), audio.encode_opus(wav, sr), "audio/ogg")
                        test_samples.append(TestSampleOut(sample_index=sample.index, sentence_index=j, filename=name))
                test_sims[sample.index] = float(np.mean(sims))
            timings["synthesize"] = time.perf_counter() - t

    progress("scoring")
    indices = [s.index for s in inp.samples]
    scored, centroid = scoring.score_samples(indices, emb, [s.quality for s in inp.samples], test_sims or None)
    note = None if engine.can_synthesize else NO_SYNTHESIS_NOTE.format(name=engine.name)
    manifest = {
        "tts_type": inp.tts_type,
        "embedding_dim": int(emb.shape[1]),
        "speaker_encoder": "resemblyzer VoiceEncoder (GE2E, 16 kHz)",
        "centroid": "coordinate-wise median (mean if < 3) of unflagged sample embeddings, L2-normalised",
        "samples": [{"file": f"sample_{s.sample_index}.npy", **vars(s)} for s in scored],
        "note": note,
    }
    t = time.perf_counter()
    progress("uploading embedding zip")
    transfer.upload(str(inp.outputs.embedding_zip), _zip(indices, emb, centroid, manifest), "application/zip")
    timings["upload"] = time.perf_counter() - t
    return EmbedResult(
        tts_type=inp.tts_type,
        sample_scores=[SampleScore(**vars(s)) for s in scored],
        test_samples=test_samples,
        preferred_sample_index=scored[0].sample_index,
        embedding_dim=int(emb.shape[1]),
        timings={k: round(v, 3) for k, v in timings.items()},
        note=note,
    ).model_dump()
