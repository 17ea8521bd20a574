"""Cutting samples out of a recording to opus 96 kb/s, a batch per ffmpeg process, by the background
encoder the splitter runs while DNSMOS decides which candidates to keep."""

import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from voice_onboarding.audio.ffmpeg import OPUS_ARGS, ffmpeg_exe

# Samples per ffmpeg process (one input + one output each): small while DNSMOS is still choosing, so that
# little is encoded that the choice then drops, and the encode starts with the first candidates measured;
# ffmpeg encodes each output in its own thread, so a batch of 4 still fills both vCPUs once DNSMOS is done.
SPECULATIVE_BATCH = 4

Cut = tuple[Path, float, float, float]  # (target, start s, duration s, gain dB)


def encode_samples(source: Path, cuts: list[Cut]) -> None:
    """Cut (target, start s, duration s, gain dB) pieces of the source to opus 96 kb/s mono, in one ffmpeg."""
    inputs: list[str] = []
    outputs: list[str] = []
    for number, (target, start, duration, gain) in enumerate(cuts):
        # -ss before -i: the demuxer seeks, so a cut an hour in does not decode the hour before it.
        inputs += ["-ss", f"{start:.3f}", "-t", f"{duration:.3f}", "-i", str(source)]
        outputs += ["-map", f"{number}:a:0", "-af", f"volume={gain:.2f}dB", *OPUS_ARGS, str(target)]
    command = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *inputs, *outputs]
    result = subprocess.run(command, capture_output=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed to encode samples: {result.stderr.decode(errors='replace')[-300:]}")


class BackgroundEncoder:
    """Encodes candidates in a thread while DNSMOS scores them: a candidate's cut and gain are known before
    its DNSMOS score, only the choice waits for the scores. Candidates are numbered by rank (0 = best
    before DNSMOS); the `likely` best are encoded as they are `offer`ed, the rest only if `finish` keeps
    them (DNSMOS promoted them). Waiting for DNSMOS before encoding cost the whole encode in wall time;
    encoding every candidate cost the extras' encodes."""

    def __init__(self, source: Path, likely: int) -> None:
        self._source, self._likely = source, likely
        self._cuts: dict[int, Cut] = {}
        self._queue: list[int] = []
        self._running: list[int] = []
        self._done: list[int] = []
        self._closed = False
        self._wake = threading.Condition()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="encode")
        self._future = self._pool.submit(self._run)

    def offer(self, number: int, cut: Cut) -> None:
        with self._wake:
            self._cuts[number] = cut
            if number < self._likely:
                self._queue.append(number)
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._done += self._running
                self._running = []
                while len(self._queue) < SPECULATIVE_BATCH and not self._closed:
                    self._wake.wait()
                if not self._queue:
                    return
                self._running, self._queue = self._queue[:SPECULATIVE_BATCH], self._queue[SPECULATIVE_BATCH:]
                batch = [self._cuts[number] for number in self._running]
            encode_samples(self._source, batch)

    def finish(self, keep: list[int]) -> list[int]:
        """Encode the rest of `keep` (offered numbers) and nothing else; returns every number encoded."""
        with self._wake:
            claimed = {*self._done, *self._running, *self._queue}
            self._queue = [n for n in self._queue if n in keep] + [n for n in keep if n not in claimed]
            self._closed = True
            self._wake.notify()
        self._future.result()
        return list(self._done)

    def __enter__(self) -> "BackgroundEncoder":
        return self

    def __exit__(self, *exc: object) -> None:
        with self._wake:
            self._queue = []  # after an error, stop once the batch under way is done
            self._closed = True
            self._wake.notify()
        self._pool.shutdown(wait=True)
