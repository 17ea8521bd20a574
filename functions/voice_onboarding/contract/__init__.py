"""The contract between the Lambdas and the GPU worker: job input/output models, the engines (`tts_type`)
with their capabilities, and the sample-quality thresholds.

Both deployables import it (the worker's image copies this package), so it may import only pydantic and
the standard library. It is the only place an engine name is spelled.
"""
