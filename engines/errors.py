"""The errors an engine raises for a user to read."""


class StudioError(Exception):
    """Base class: the message is written for the person using the app."""


class InputError(StudioError, ValueError):
    """The request cannot be run as given; the message says what to change."""


class ModelUnavailable(StudioError):
    """A model's weights are not on this machine and could not be fetched."""

    def __init__(self, component: str, source: str, fix: str, reason: str = ""):
        self.component = component
        self.source = source
        self.fix = fix
        self.reason = reason
        detail = f" ({reason})" if reason else ""
        super().__init__(f"Model {source} for {component} is not available{detail}. {fix}")


class OutOfMemory(StudioError):
    """The accelerator ran out of memory; the engine was released."""


class Cancelled(StudioError):
    """The run was cancelled (Cancel, a closed browser tab, Ctrl-C) and stopped between steps."""

    def __init__(self, message: str = "Cancelled: the run stopped before it finished."):
        super().__init__(message)
