"""Training: corpus, tokenizer, masked-diffusion objective, training loop, evaluation, fine-tuning.

`training` imports `infill_lsp`; `infill_lsp` never imports `training`.
"""
