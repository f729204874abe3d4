"""Subject video: a zero-shot approximation of DreamVideo-2 on AnimateDiff + IP-Adapter.

The engine module (and torch with it) is imported on first use, so the app starts light.
"""

from .requests import Keyframe, SubjectVideoRequest

__all__ = ["Keyframe", "SubjectVideoEngine", "SubjectVideoRequest", "SubjectVideoResult"]


def __getattr__(name: str):
    if name in ("SubjectVideoEngine", "SubjectVideoResult"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
