"""Model directories and the model families that read them.

`loaded` is what every family gives the engine (an `InfillModel`: network, tokenizer, special
ids, a logits function); `files` checks a directory's files before anything is allocated;
`families` detects the family of a directory and loads it through that family's module, one
small module each (`ours`: today's format). `infill_lsp.model` is the front door the rest of
the package and training use.
"""
