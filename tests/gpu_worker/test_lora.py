"""LoRA (moshi's implementation): training the CPU speaker-adaptation model, and its train_lora job end to end."""

import io
import json
import zipfile

import torch
from gpu_worker.handler import handler
from gpu_worker.lora import SpeakerAdaptedTTS

from gpu_worker import lora
from voice_onboarding.contract.gpu import LoraHyperparameters


def test_loss_drops_and_only_adapter_trains() -> None:
    torch.manual_seed(1)
    batches = [
        {"chars": torch.randint(97, 123, (20,)), "speaker": torch.randn(256), "mel": torch.randn(90, 80) * 0.5 + 1}
        for _ in range(2)
    ]
    model = SpeakerAdaptedTTS()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hp = LoraHyperparameters(rank=4, alpha=8, learning_rate=5e-3, steps=60)
    params = lora.add_lora(model, hp)
    with torch.no_grad():  # lora_B starts at zero: the adapted model starts as the base model
        assert torch.equal(model(**batches[0]), SpeakerAdaptedTTS()(**batches[0]))
    history = lora.train(params, lambda b: model(**b), batches, hp)
    assert len(history) == 60
    assert sum(history[-5:]) / 5 < 0.7 * sum(history[:5]) / 5
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    for name, value in model.state_dict().items():
        if "lora_" not in name:
            assert torch.equal(value, before[name.replace(".frozen_W", "")])
    lora.remove_lora(model)  # the base back, exactly
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_train_lora_job_end_to_end(blob_server, voices, encoder) -> None:
    texts = {
        "same_0": "The quick brown fox jumps over the lazy dog near the river bank.",
        "same_1": "Please call Stella and ask her to bring these things with her from the store.",
        "same_2": "We will meet again tomorrow morning to discuss the results of the project.",
    }
    dataset = [{"url": blob_server.put(f"ds/{n}.wav", voices[n]), "transcript": t} for n, t in texts.items()]
    out = handler(
        {"input": {"kind": "train_lora", "tts_type": "resemblyzer", "dataset": dataset,
                   "hyperparameters": {"rank": 4, "alpha": 8, "learning_rate": 3e-3, "steps": 40},
                   "outputs": {"adapter": blob_server.url("a/adapter.zip"),
                               "evaluation_audio": blob_server.url("a/eval.opus")}}}
    )  # fmt: skip
    assert "error" not in out, out
    assert len(out["loss_history"]) == 40 and out["final_loss"] < out["loss_history"][0]
    ev = out["evaluation"]
    assert ev["heldout_item"] == 3 and ev["heldout_loss"] > 0 and "speaker_similarity" in ev
    assert out["hyperparameters"]["rank"] == 4
    with zipfile.ZipFile(io.BytesIO(blob_server.get("a/adapter.zip"))) as zf:
        names = set(zf.namelist())
        assert {"config.json", "lora.safetensors", "manifest.json"} <= names
        assert json.loads(zf.read("config.json"))["lora_rank"] == 4
    assert blob_server.get("a/eval.opus")[:4] == b"OggS"
