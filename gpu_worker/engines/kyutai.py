"""Kyutai TTS (delayed-streams model) through its `moshi` package: the production engine.

Weights are baked into the image at build time (download_weights.py -> HF cache under $HF_HOME) and
loaded with HF_HUB_OFFLINE=1, so a cold start never reaches the hub. The voice is conditioned on an
audio prefix: the sample is encoded by Mimi and prepended to the generation, the model continues in
that voice. When moshi, the weights or the GPU are missing the engine raises EngineUnavailable.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.engines.base import Engine, EngineUnavailable
from gpu_worker.engines.speaker_encoder import embed_utterance, get_encoder

DEFAULT_REPO = "kyutai/tts-1.6b-en_fr"


def _settings() -> dict[str, Any]:
    return {
        "repo": os.environ.get("KYUTAI_TTS_REPO", DEFAULT_REPO),
        "device": os.environ.get("KYUTAI_DEVICE", "cuda"),
        "n_q": int(os.environ.get("KYUTAI_N_Q", "32")),
        "temp": float(os.environ.get("KYUTAI_TEMP", "0.6")),
        "cfg_coef": float(os.environ.get("KYUTAI_CFG_COEF", "2.0")),
        # Seconds of the sample used as the voice prompt (longer = closer voice, slower generation).
        "prompt_seconds": float(os.environ.get("KYUTAI_PROMPT_SECONDS", "10")),
    }


class KyutaiEngine(Engine):
    name = "kyutai"
    can_synthesize = True

    def __init__(self) -> None:
        cfg = _settings()
        try:
            import torch
            from moshi.models.loaders import CheckpointInfo
            from moshi.models.tts import TTSModel
        except ImportError as exc:
            raise EngineUnavailable(f"kyutai engine unavailable: moshi package not installed ({exc})") from exc
        if cfg["device"].startswith("cuda") and not torch.cuda.is_available():
            raise EngineUnavailable("kyutai engine unavailable: no CUDA device (set KYUTAI_DEVICE=cpu to force CPU)")
        try:
            info = CheckpointInfo.from_hf_repo(cfg["repo"])
            self.tts = TTSModel.from_checkpoint_info(
                info, n_q=cfg["n_q"], temp=cfg["temp"], device=torch.device(cfg["device"])
            )
        except Exception as exc:
            raise EngineUnavailable(
                f"kyutai engine unavailable: cannot load {cfg['repo']} offline "
                f"(weights baked at build time under $HF_HOME?): {type(exc).__name__}: {exc}"
            ) from exc
        self.torch = torch
        self.info = info
        self.cfg = cfg
        get_encoder(cfg["device"])

    @property
    def embedding_dim(self) -> int:
        return 256

    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        return embed_utterance(wav, sample_rate)

    def _prompt_file(self, voice_sample: Path) -> Path:
        """Trim the sample to the prompt length (Mimi-encoding a long sample costs generation steps)."""
        import soundfile as sf

        from gpu_worker.audio import load_mono

        sr = int(self.tts.mimi.sample_rate)
        wav = load_mono(voice_sample, sr)[: int(self.cfg["prompt_seconds"] * sr)]
        out = voice_sample.with_suffix(".prompt.wav")
        sf.write(out, wav, sr)
        return out

    def prefix(self, voice_sample: Path):
        return self.tts.get_prefix(self._prompt_file(voice_sample))

    def conditioning(self, reference: Path) -> np.ndarray:
        # The voice of a clone is its audio prompt; stored as Mimi codes so inference skips re-encoding.
        return self.prefix(reference).cpu().numpy().astype(np.int32)

    def synthesize(self, text: str, voice_sample: Path) -> tuple[np.ndarray, int]:
        torch, tts = self.torch, self.tts
        prefix = self.prefix(voice_sample)
        cfg_coef = self.cfg["cfg_coef"] if self.cfg["cfg_coef"] in tts.valid_cfg_conditionings else None
        attributes = tts.make_condition_attributes([], cfg_coef=cfg_coef)
        entries = tts.prepare_script([text], padding_between=1)
        pcms: list[np.ndarray] = []

        def on_frame(frame: Any) -> None:
            if (frame != -1).all():
                pcm = tts.mimi.decode(frame[:, 1:, :]).cpu().numpy()
                pcms.append(np.clip(pcm[0, 0], -1, 1))

        with torch.no_grad(), tts.mimi.streaming(1):
            tts.generate([entries], [attributes], prefixes=[prefix], on_frame=on_frame)
        sr = int(tts.mimi.sample_rate)
        audio = np.concatenate(pcms) if pcms else np.zeros(0, dtype=np.float32)
        # The decoded stream starts with the prompt itself; keep only the new speech.
        skip = int(prefix.shape[-1] * sr / tts.mimi.frame_rate)
        return audio[skip:], sr
