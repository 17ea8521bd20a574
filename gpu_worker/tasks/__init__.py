"""One module per job kind; each takes the validated input and a progress callback."""
