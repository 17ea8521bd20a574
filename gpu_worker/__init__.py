"""RunPod serverless GPU worker: embed/score samples, clone a voice, train a LoRA adapter.

Separate image from the Lambdas: it never imports `voice_onboarding` and holds no AWS credentials.
"""
