"""Kyutai TTS (delayed-streams model) through its `moshi` package: the production engine.

Weights are baked into the image at build time (download_weights.py -> HF cache under $HF_HOME) and
loaded with HF_HUB_OFFLINE=1, so a cold start never reaches the hub. When moshi, the weights or the
GPU are missing the engine raises EngineUnavailable; nothing is faked.

Voice conditioning from a sample needs an *audio-prefix* checkpoint (default `kyutai/tts-0.75b-en-public`):
the sample is Mimi-encoded and forced as the start of the generation, the model continues in that
voice (what `TTSModel.simple_generate` does for such models). Multi-speaker checkpoints such as
`kyutai/tts-1.6b-en_fr` condition on precomputed `speaker_wavs` embeddings through cross-attention,
and Kyutai has not released the encoder that makes them from audio: they cannot take a voice from
an arbitrary sample, so the engine refuses them with a clear reason instead of using a stock voice.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.engines.base import Engine, EngineUnavailable
from gpu_worker.engines.speaker_encoder import embed_utterance, get_encoder
from voice_onboarding.contract.engines import KYUTAI

DEFAULT_REPO = "kyutai/tts-0.75b-en-public"


def settings() -> dict[str, Any]:
    return {
        "repo": os.environ.get("KYUTAI_TTS_REPO", DEFAULT_REPO),
        "device": os.environ.get("KYUTAI_DEVICE", "cuda"),
        # The public-data checkpoint supports at most 16 RVQ levels.
        "n_q": int(os.environ.get("KYUTAI_N_Q", "16")),
        "temp": float(os.environ.get("KYUTAI_TEMP", "0.6")),
        "cfg_coef": float(os.environ.get("KYUTAI_CFG_COEF", "2.0")),
        # Seconds of the sample used as the voice prompt (longer = closer voice, slower generation).
        "prompt_seconds": float(os.environ.get("KYUTAI_PROMPT_SECONDS", "10")),
    }


def _unavailable(reason: str) -> EngineUnavailable:
    return EngineUnavailable(f"kyutai engine unavailable: {reason}")


class KyutaiEngine(Engine):
    name = KYUTAI
    can_synthesize = True

    def __init__(self) -> None:
        cfg = settings()
        try:
            import torch
            from moshi.models.loaders import CheckpointInfo
            from moshi.models.tts import TTSModel
        except ImportError as exc:
            raise _unavailable(f"moshi package not installed ({exc})") from exc
        if cfg["device"].startswith("cuda") and not torch.cuda.is_available():
            raise _unavailable("no CUDA device (set KYUTAI_DEVICE=cpu to force CPU)")
        try:
            info = CheckpointInfo.from_hf_repo(cfg["repo"])
            tts = TTSModel.from_checkpoint_info(info, n_q=cfg["n_q"], temp=cfg["temp"], device=cfg["device"])
        except Exception as exc:
            raise _unavailable(
                f"cannot load {cfg['repo']} offline (weights baked at build time under $HF_HOME?): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if tts.multi_speaker:
            raise _unavailable(
                f"{cfg['repo']} conditions voices on precomputed speaker embeddings whose encoder is not public, "
                "so it cannot take a voice from a sample; use an audio-prefix checkpoint such as "
                f"{DEFAULT_REPO} (KYUTAI_TTS_REPO)"
            )
        if not tts.valid_cfg_conditionings:
            # Not CFG-distilled: CFG is applied at generation time (as simple_generate does).
            tts.cfg_coef = cfg["cfg_coef"]
        self.torch = torch
        self.tts = tts
        self.cfg = cfg
        get_encoder(cfg["device"])

    @property
    def embedding_dim(self) -> int:
        return 256

    @property
    def sample_rate(self) -> int:
        return int(self.tts.mimi.sample_rate)

    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        # Similarity is judged by the same speaker encoder for every engine.
        return embed_utterance(wav, sample_rate)

    def _prompt_file(self, voice_sample: Path) -> Path:
        """Trim the sample to the prompt length (every prompt frame is a generation step)."""
        import soundfile as sf

        from gpu_worker.audio import load_mono

        wav = load_mono(voice_sample, self.sample_rate)[: int(self.cfg["prompt_seconds"] * self.sample_rate)]
        out = voice_sample.with_suffix(".prompt.wav")
        sf.write(out, wav, self.sample_rate)
        return out

    def prefix(self, voice_sample: Path):
        """[1 + n_q, frames] long tensor: a null text row over the Mimi codes of the prompt."""
        return self.tts.get_prefix(self._prompt_file(voice_sample))

    def conditioning(self, reference: Path) -> np.ndarray:
        # A cloned voice *is* its audio prompt; stored as codes so inference skips re-encoding.
        return self.prefix(reference).cpu().numpy().astype(np.int32)

    def synthesize(self, text: str, voice_sample: Path) -> tuple[np.ndarray, int]:
        torch, tts = self.torch, self.tts
        prefix = self.prefix(voice_sample)
        entries = tts.prepare_script([text], padding_between=1)
        with torch.no_grad():
            result = tts.generate([entries], [], prefixes=[prefix])
            with tts.mimi.streaming(1):
                pcms = [torch.clip(tts.mimi.decode(f[:, 1:, :]), -1, 1) for f in result.frames[tts.delay_steps :]]
        # As in simple_generate: drop two frames (a click), then the prompt, stop at the end step.
        pcms = pcms[2:][prefix.shape[-1] : result.end_steps[0]]
        if not pcms:
            raise ValueError(f"kyutai generated no audio for {text[:40]!r}")
        audio = torch.cat([p[0, 0] for p in pcms]).float().cpu().numpy()
        return audio, self.sample_rate
