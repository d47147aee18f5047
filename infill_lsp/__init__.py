"""infill-lsp: a language server that fills, rewrites and revises code with a diffusion model."""

import os

# Nothing is ever fetched from a model hub, and nothing reports home: set before transformers loads.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

__version__ = "0.1.0"
