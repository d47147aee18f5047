"""The language server: the wire, the server's state, documents and positions, the features
(completion, actions, hints), their handlers and the process. Imports come down into here from
`cli` only; nothing below (`engine`, `model`, ...) imports from here."""
