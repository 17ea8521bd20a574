"""Resemblyzer embed benchmark: model load time and CPU seconds per sample.

    python benchmarks/embed_bench.py [--samples 8] [--seconds 8]

Samples are espeak-ng speech (distinct sentences) cut/padded to --seconds; CPU time is process time.
"""

import argparse
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

    import numpy as np
    import torch
    from gpu_worker.audio import SAMPLE_RATE, load_mono

    with tempfile.TemporaryDirectory() as tmp:
        wavs = []
        for i in range(args.samples):
            path = Path(tmp) / f"s{i}.wav"
            text = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(3))
            subprocess.run(["espeak-ng", "-p", "40", "-w", str(path), text], check=True)
            wav = load_mono(path)[: int(args.seconds * SAMPLE_RATE)]
            wavs.append(np.pad(wav, (0, max(0, int(args.seconds * SAMPLE_RATE) - len(wav)))))

    t0, c0 = time.perf_counter(), time.process_time()
    from gpu_worker.engines.speaker_encoder import embed_utterance, get_encoder

    get_encoder("cpu")
    load_wall, load_cpu = time.perf_counter() - t0, time.process_time() - c0

    embed_utterance(wavs[0], SAMPLE_RATE)  # warm-up (first call allocates)
    t0, c0 = time.perf_counter(), time.process_time()
    for wav in wavs:
        embed_utterance(wav, SAMPLE_RATE)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0

    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, threads {threads}, {args.samples} samples x {args.seconds:.0f} s")
    print(f"model load: {load_wall:.2f} s wall, {load_cpu:.2f} s CPU")
    print(f"embed: {wall / args.samples:.3f} s wall/sample, {cpu / args.samples:.3f} s CPU/sample")
    print(f"real-time factor (CPU s per audio s): {cpu / args.samples / args.seconds:.4f}")


if __name__ == "__main__":
    main()
