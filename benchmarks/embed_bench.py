"""Resemblyzer embed benchmark: model load time and CPU seconds per sample.

    python benchmarks/embed_bench.py [--samples 8] [--seconds 8]

Samples are espeak-ng speech (distinct sentences) cut/padded to --seconds; CPU time is process time.
Decode is timed separately (the worker decodes every downloaded sample with ffmpeg before embedding).
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


if __name__ == "__main__":
    main()
