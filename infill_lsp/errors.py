"""The project's error family: each carries a message written for the user."""


class InfillError(Exception):
    """Base of every error infill-lsp raises on purpose; str(error) is shown to the user."""


class ModelError(InfillError):
    """A model directory is missing, broken or unsafe."""


class InputError(InfillError):
    """A request or file the user gave cannot be served (bad position, range, encoding...)."""


class Superseded(Exception):
    """A newer request for the same document made this one pointless."""


class ContentModified(InfillError):
    """The document changed or closed while a request ran: its result no longer applies."""


class ModelUnavailable(InfillError):
    """No model to run: it is still loading, or it failed to load."""
