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
    """The accelerator ran out of memory; models were released. `retry`: other engines were
    released to make room, so the same run may now fit."""

    def __init__(self, message: str, retry: bool = False):
        super().__init__(message)
        self.retry = retry
