"""One declaration per request field: default, type, range or choices, unit and help.

A Request dataclass declares each field with one of the helpers below (`integer`, `number`,
`flag`, `choice`, `text`, `seed`, `value`). Everything else is derived from that declaration:
`Request.validate()` checks and converts each value with `FieldSpec.check`, the command line
builds its arguments with `engines.commands.add_request_arguments`, and the tabs build their
controls with `tabs.forms.Form`. A test walks every field and checks the three agree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputError

SEED_MAX = 2**32 - 1  # numpy's limit; torch accepts it too

INT, FLOAT, BOOL, CHOICE, TEXT, VALUE = "int", "float", "bool", "choice", "text", "value"


@dataclass(frozen=True)
class FieldSpec:
    """What one request field accepts, and how the CLI and the UI present it."""

    kind: str
    label: str
    help: str = ""
    low: float | None = None
    high: float | None = None
    unit: str = ""
    choices: tuple[Any, ...] = ()
    choice_labels: tuple[str, ...] = ()
    optional: bool = False  # None is accepted (and means "not given")
    empty: str = ""  # for text: the message when it is empty; "" allows empty text
    max_length: int | None = None
    step: float | None = None  # the UI's step; the request itself accepts any value in range
    widget: str = ""  # "slider" or "number" for numbers; "" picks one from the range
    cli: tuple[str, ...] | None = ()  # flags; () derives --name, None keeps it off the CLI
    sized: tuple[Any, Any] | None = None
    """Device-sized: (value on an accelerator, value on a CPU) for when the caller gives none;
    the field's own default is then None, "not given", until the engine sizes the request."""

    def sized_default(self, accelerator: bool) -> Any:
        """The value this field takes when not given, on an accelerator or on a CPU."""
        if self.sized is None:
            raise ValueError(f"{self.label} is not device-sized")
        return self.sized[0] if accelerator else self.sized[1]

    def sized_text(self) -> str:
        """ "512 px on a GPU, 256 on a CPU" ("" when the field is not device-sized)."""
        if self.sized is None:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        gpu, cpu = (_fmt(v) for v in self.sized)
        return f"{gpu}{unit} on a GPU, {cpu} on a CPU"

    def range_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"{_fmt(self.low)} to {_fmt(self.high)}{unit}"
        if self.low is not None:
            return f"at least {_fmt(self.low)}{unit}"
        if self.high is not None:
            return f"at most {_fmt(self.high)}{unit}"
        return ""

    def check(self, value: Any) -> Any:
        """The value converted to the field's type, or InputError saying what is wrong."""
        if value is None and (self.optional or self.sized is not None):
            return None
        if self.kind == INT:
            return self._in_range(_as_int(self.label, value))
        if self.kind == FLOAT:
            return self._in_range(_as_float(self.label, value))
        if self.kind == BOOL:
            if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
                return bool(value)
            raise InputError(f"{self.label} must be true or false, got {value!r}.")
        if self.kind == CHOICE:
            return self._choice(value)
        if self.kind == TEXT:
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise InputError(f"{self.label} must be text, got {value!r}.")
            if self.empty and not value.strip():
                raise InputError(self.empty)
            if self.max_length is not None and len(value) > self.max_length:
                raise InputError(
                    f"The {self.label} has {len(value)} characters; the limit is {self.max_length}."
                )
            return value
        return value

    def _in_range(self, value: float) -> float:
        low_ok = self.low is None or value >= self.low
        high_ok = self.high is None or value <= self.high
        if not (low_ok and high_ok):
            raise InputError(f"{self.label} is {_fmt(value)}; it must be {self.range_text()}.")
        return value

    def _choice(self, value: Any) -> Any:
        if isinstance(value, str) and all(isinstance(c, int) for c in self.choices):
            value = _typed_number(value)  # "512" typed into a dropdown of whole numbers
        for choice in self.choices:
            same_number = (
                isinstance(choice, int)
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and value == choice
            )
            if value == choice or same_number:
                return choice
        known = ", ".join(str(c) for c in self.choices)
        raise InputError(f"Unknown {self.label} {value!r}; choose one of {known}.")


def _typed_number(text: str) -> Any:
    try:
        return int(text.strip())
    except ValueError:
        return text


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _as_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{label} must be a whole number, got {value!r}.")
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise InputError(f"{label} must be a whole number, got {value!r}.")
        value = int(value)
    return int(value)


def _as_float(label: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{label} must be a number, got {value!r}.")
    if not math.isfinite(value):
        raise InputError(f"{label} must be a finite number, got {value!r}.")
    return float(value)


def _label(name: str) -> str:
    return name.replace("_", " ")


def _field(default: Any, spec: FieldSpec):
    if isinstance(default, (list, dict)):
        return dataclasses.field(
            default_factory=lambda: type(default)(default), metadata={"spec": spec}
        )
    return dataclasses.field(default=default, metadata={"spec": spec})


def integer(
    default: int | None,
    low: int | None,
    high: int | None,
    help: str = "",
    *,
    label: str = "",
    unit: str = "",
    optional: bool = False,
    step: int = 1,
    widget: str = "",
    cli: tuple[str, ...] | None = (),
    cpu: int | None = None,
):
    """A whole number in [low, high]; 10.0 is taken as 10, 10.5 is refused. With `cpu`, the
    field is device-sized: `default` on an accelerator, `cpu` on a CPU, when none is given."""
    return _ranged(INT, default, low, high, help, label, unit, optional, step, widget, cli, cpu)


def number(
    default: float | None,
    low: float | None,
    high: float | None,
    help: str = "",
    *,
    label: str = "",
    unit: str = "",
    optional: bool = False,
    step: float | None = None,
    widget: str = "",
    cli: tuple[str, ...] | None = (),
    cpu: float | None = None,
):
    """A finite number in [low, high]; with `cpu`, device-sized (see `integer`)."""
    return _ranged(FLOAT, default, low, high, help, label, unit, optional, step, widget, cli, cpu)


def _ranged(kind, default, low, high, help, label, unit, optional, step, widget, cli, cpu):
    """An integer or number field; a device-sized one starts unset (None) and is filled in
    for the device that runs it."""
    sized = None if cpu is None else (default, cpu)
    spec = FieldSpec(
        kind,
        label,
        help,
        low,
        high,
        unit,
        optional=optional,
        step=step,
        widget=widget,
        cli=cli,
        sized=sized,
    )
    return _field(None if sized else default, spec)


def flag(default: bool, help: str = "", *, label: str = "", cli: tuple[str, ...] | None = ()):
    """On or off; the CLI offers --name and --no-name."""
    return _field(default, FieldSpec(BOOL, label, help, cli=cli))


def choice(
    default: Any,
    choices: Sequence[Any],
    help: str = "",
    *,
    label: str = "",
    labels: Sequence[str] = (),
    optional: bool = False,
    cli: tuple[str, ...] | None = (),
):
    """One of `choices`; `labels` (same order) are what the UI shows for them."""
    spec = FieldSpec(
        CHOICE,
        label,
        help,
        choices=tuple(choices),
        choice_labels=tuple(labels),
        optional=optional,
        cli=cli,
    )
    return _field(default, spec)


def text(
    default: str = "",
    help: str = "",
    *,
    label: str = "",
    empty: str = "",
    max_length: int | None = None,
    cli: tuple[str, ...] | None = (),
):
    """Text; with `empty`, empty text is refused with that message."""
    spec = FieldSpec(TEXT, label, help, empty=empty, max_length=max_length, cli=cli)
    return _field(default, spec)


def seed(default: int = 0, help: str = "the same seed gives the same result", **kwargs):
    """A random seed, 0 to 2**32 - 1."""
    return integer(default, 0, SEED_MAX, help, label=kwargs.pop("label", "seed"), **kwargs)


def value(
    default: Any = None, help: str = "", *, label: str = "", cli=None, required: bool = False
):
    """A value the engine checks itself (a file, an image, a list of boxes); off the CLI unless
    the command adds it by hand. `required`: a run needs one (the API lists it as required;
    the request still says, in its words, when it is missing)."""
    return _field(default, FieldSpec(VALUE, label, help, optional=not required, cli=cli))


def spec_of(field: dataclasses.Field) -> FieldSpec | None:
    """The declaration of a dataclass field, with its label filled in from the name."""
    spec = field.metadata.get("spec")
    if spec is None:
        return None
    return spec if spec.label else dataclasses.replace(spec, label=_label(field.name))


def declared_fields(cls) -> Iterator[tuple[dataclasses.Field, FieldSpec]]:
    """Every declared field of a Request class, in order."""
    for field in dataclasses.fields(cls):
        spec = spec_of(field)
        if spec is not None:
            yield field, spec


def sized_fields(cls) -> Iterator[tuple[str, FieldSpec]]:
    """The device-sized fields of a Request class (name, spec), in order."""
    for field, spec in declared_fields(cls):
        if spec.sized is not None:
            yield field.name, spec


def field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def declaration(cls, name: str) -> tuple[FieldSpec, Any]:
    """(spec, default) of one field of a Request class."""
    for field, spec in declared_fields(cls):
        if field.name == name:
            return spec, field_default(field)
    raise KeyError(f"{cls.__name__} declares no field {name!r}")
