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


class ModelsMissing(ModelUnavailable):
    """A component could not be had, and others of the same engine are missing too: one
    message lists them all, with the command that fetches them and each override variable."""

    def __init__(self, first: ModelUnavailable, engine: str, others: list):
        self.__dict__.update(first.__dict__)
        self.engine = engine
        self.others = others  # [(ComponentSpec, reason)]
        listed = "; ".join(_missing_entry(spec) for spec, _ in others)
        StudioError.__init__(
            self,
            f"{first} Also not on this machine for {engine}: {listed}. "
            f"`zsstudio download {engine}` fetches them all.",
        )


def _missing_entry(spec) -> str:
    what = f" (only for {spec.optional})" if spec.optional else ""
    return f"{spec.key}{what}, or set {spec.variable}"


class OutOfMemory(StudioError):
    """The accelerator ran out of memory; models were released. `retry`: other engines were
    released to make room, so the same run may now fit."""

    def __init__(self, message: str, retry: bool = False):
        super().__init__(message)
        self.retry = retry


class ServerError(StudioError):
    """The server that runs the models failed, not the request: a Ray Serve replica stopped
    during the run, or none could be reached. Trying again may well succeed."""


class Cancelled(StudioError):
    """The run was cancelled (Cancel, a closed browser tab, Ctrl-C) and stopped between steps."""

    def __init__(self, message: str = "Cancelled: the run stopped before it finished."):
        super().__init__(message)
