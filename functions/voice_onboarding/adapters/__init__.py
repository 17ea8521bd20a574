"""Clients of the outside services a job touches: Step Functions (start an execution) and RunPod's
serverless HTTP API (run/status/cancel). Built by the composition root (handlers/composition.py);
the local stack and tests inject stand-ins through its override hook."""
