"""RunPod serverless GPU worker: embed/score samples, clone a voice, train a LoRA adapter.

Separate image from the Lambdas, holding no AWS credentials. Of `voice_onboarding` it imports only the
job contract (`voice_onboarding.contract`: pydantic models, engine table, quality thresholds), which the
image copies beside this package (/app/voice_onboarding). From a checkout the contract is under
functions/: put that on the path when the package is not installed.
"""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("voice_onboarding") is None:
    _functions = Path(__file__).resolve().parent.parent / "functions"
    if (_functions / "voice_onboarding" / "contract").is_dir():
        sys.path.append(str(_functions))
