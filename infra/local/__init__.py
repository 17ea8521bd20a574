"""Local-only harness (never shipped in a Lambda package): the pipeline on moto's Step Functions engine."""
