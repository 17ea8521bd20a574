"""Voice onboarding backend: one package shared by every Lambda (api, split, gpu dispatch, failure)."""

__version__ = "0.1.0"
