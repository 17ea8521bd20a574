"""Embed benchmark: the speaker encoder (resemblyzer) and each Kyutai engine's CPU cost on tiny models.

    python benchmarks/embed_bench.py [--samples 8] [--seconds 8] [--engines kyutai,kyutai-pocket]

Samples are espeak-ng speech (distinct sentences) cut/padded to --seconds; CPU time is process time.
Decode is timed separately (the worker decodes every downloaded sample with ffmpeg before embedding).

Per engine (the worker's real engine code on the tiny random-weight models the tests build, so the figures
are the code path's overhead plus a toy model, not the real model's cost; see gpu_worker/README.md for the
GPU cost on paper): model load, artifact (prompt selection + voice), synthesize (per sentence and per
generated frame) and, for `kyutai`, one LoRA optimizer step.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank on a sunny afternoon.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet again tomorrow morning to discuss the results of the project in detail.",
    "A journey of a thousand miles begins with a single step, and then many more after it.",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--engines", default="kyutai,kyutai-pocket", help="comma-separated; empty for none")
    args = parser.parse_args()

    t0, c0 = time.perf_counter(), time.process_time()
    import numpy as np
    import torch
    from gpu_worker.audio import SAMPLE_RATE, load_mono

    import_wall, import_cpu = time.perf_counter() - t0, time.process_time() - c0

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.samples):
            path = Path(tmp) / f"s{i}.wav"
            text = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(3))
            subprocess.run(["espeak-ng", "-p", "40", "-w", str(path), text], check=True)
            paths.append(path)
        # Decode (ffmpeg subprocess) as the worker does for every downloaded sample.
        t0 = time.perf_counter()
        decoded = [load_mono(p) for p in paths]
        decode_wall = time.perf_counter() - t0
    n = int(args.seconds * SAMPLE_RATE)
    wavs = [np.pad(w[:n], (0, max(0, n - len(w)))) for w in decoded]

    t0, c0 = time.perf_counter(), time.process_time()
    from gpu_worker.engines.speaker_encoder import embed_utterance, get_encoder

    get_encoder("cpu")
    load_wall, load_cpu = time.perf_counter() - t0, time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    embed_utterance(wavs[0], SAMPLE_RATE)  # first call: lazy imports (librosa, webrtcvad) and allocations
    first_wall, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    for wav in wavs:
        embed_utterance(wav, SAMPLE_RATE)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0

    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, threads {threads}, {args.samples} samples x {args.seconds:.0f} s")
    print(f"import torch + worker: {import_wall:.2f} s wall, {import_cpu:.2f} s CPU")
    print(f"model load: {load_wall:.2f} s wall, {load_cpu:.2f} s CPU")
    print(f"first embed (one-off): {first_wall:.2f} s wall, {first_cpu:.2f} s CPU")
    print(f"decode (ffmpeg): {decode_wall / args.samples:.3f} s wall/sample")
    print(f"embed: {wall / args.samples:.3f} s wall/sample, {cpu / args.samples:.3f} s CPU/sample")
    print(f"real-time factor (CPU s per audio s): {cpu / args.samples / args.seconds:.4f}")
    print(f"load average: {os.getloadavg()[0]:.1f} (wall times inflate on a busy machine; CPU times do not)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        subprocess.run(["espeak-ng", "-p", "40", "-w", str(wav), " ".join(SENTENCES[:2])], check=True)
        for name in filter(None, args.engines.split(",")):
            engine_bench(name.strip(), wav, Path(tmp))


def _cpu(fn):
    c0 = time.process_time()
    result = fn()
    return result, time.process_time() - c0


def engine_bench(name: str, sample: Path, tmp: Path) -> None:
    """CPU seconds of one engine's phases on its tiny model (tests/gpu_worker/tiny_models.py)."""
    from tests.gpu_worker import tiny_models

    os.environ.update(KYUTAI_DEVICE="cpu", KYUTAI_PROMPT_SECONDS="10", POCKET_PROMPT_SECONDS="10", HF_HUB_OFFLINE="1")
    if name == "kyutai":
        os.environ["KYUTAI_TTS_REPO"] = str(tiny_models.build_dsm(tmp / "dsm"))
        from gpu_worker.engines.kyutai import KyutaiEngine as factory
    else:
        os.environ["POCKET_TTS_CONFIG"] = str(tiny_models.build_pocket(tmp / "pocket"))
        from gpu_worker.engines.pocket import PocketEngine as factory
    from gpu_worker import voices

    engine, load = _cpu(factory)
    files, artifact = _cpu(lambda: voices.make_voice_files(engine, sample, tmp / name))
    voice, reload = _cpu(lambda: engine.load_voice(files.artifact_path))
    engine.synthesize("Warm up.", voice)
    text = "Please call Stella and ask her to bring these things."
    (wav, sr), synth = _cpu(lambda: engine.synthesize(text, voice))
    # Both families run one model step per 12.5 Hz frame; the DSM also steps through its prompt's frames.
    steps = len(wav) / sr * 12.5 + (files.prompt.seconds * 12.5 if name == "kyutai" else 0)
    print(f"\n[{name}] tiny model, {files.prompt.seconds:.1f} s prompt ({files.prompt.cut}), CPU seconds:")
    print(
        f"  load {load:.2f} | artifact {artifact:.2f} | reload {reload:.3f} | synthesize {synth:.2f} "
        f"({len(wav) / sr:.1f} s audio, ~{steps:.0f} steps, {synth / max(steps, 1) * 1000:.0f} ms/step)"
    )
    if name == "kyutai":
        from gpu_worker.engines import kyutai_lora

        from gpu_worker import lora
        from voice_onboarding.contract.gpu import LoraHyperparameters

        batches = kyutai_lora._batches(engine, [sample], [" ".join(SENTENCES[:2])])
        hp = LoraHyperparameters(rank=8, alpha=16, steps=1)
        params = lora.add_lora(engine.tts.lm, hp)
        step = lambda b: kyutai_lora.lm_loss(engine.tts.lm, b["codes"], kyutai_lora.conditions(engine))  # noqa: E731
        lora.train(params, step, batches, hp)  # warm-up step
        _, train = _cpu(lambda: lora.train(params, step, batches, LoraHyperparameters(rank=8, alpha=16, steps=3)))
        lora.remove_lora(engine.tts.lm)
        codes = batches[0]["codes"].shape[-1]
        print(f"  LoRA train step {train / 3:.2f} ({codes} frames of codes, rank 8, every LM linear)")


if __name__ == "__main__":
    main()
