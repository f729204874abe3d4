"""One declaration per request field: the request, the CLI and the tab agree on every field's
default, range and choices, because all three are derived from the declaration."""

from __future__ import annotations

import argparse
import math
import re

import pytest

from engines.capabilities import CAPABILITIES
from engines.cli import build_parser
from engines.errors import InputError
from engines.fields import BOOL, CHOICE, FLOAT, INT, TEXT, declared_fields, field_default


def request_types():
    types = []
    for capability in CAPABILITIES:
        engine_class = capability.load_engine_class()
        types += list(engine_class.tasks)
    return types


REQUEST_TYPES = request_types()


def declared(request_type):
    return [(f.name, spec, field_default(f)) for f, spec in declared_fields(request_type)]


def test_every_engine_declares_its_request_fields():
    assert len(REQUEST_TYPES) >= 7  # layout, gan x2, speech x2, compression x3
    for request_type in REQUEST_TYPES:
        assert declared(request_type), f"{request_type.__name__} declares no field"


@pytest.mark.parametrize("request_type", REQUEST_TYPES, ids=lambda t: t.__name__)
def test_request_accepts_its_defaults_and_refuses_the_edges(request_type):
    for name, spec, default in declared(request_type):
        if spec.kind == TEXT and spec.empty:  # required text: empty is refused, by design
            with pytest.raises(InputError, match=re.escape(spec.empty)):
                spec.check(default)
            continue
        assert spec.check(default) == default or default is None, name
        if spec.kind in (INT, FLOAT):
            step = 1 if spec.kind == INT else 1e-6 * max(1.0, abs(spec.high or 1))
            if spec.low is not None:
                with pytest.raises(InputError, match=re.escape(spec.label)):
                    spec.check(spec.low - step)
            if spec.high is not None:
                with pytest.raises(InputError, match=re.escape(spec.label)):
                    spec.check(spec.high + step)
            for junk in ("2", float("nan"), True):
                with pytest.raises(InputError, match=re.escape(spec.label)):
                    spec.check(junk)
        if spec.kind == INT:
            inside = spec.low if spec.low is not None else 0
            assert spec.check(float(inside)) == inside
            with pytest.raises(InputError, match="whole number"):
                spec.check(inside + 0.5)
        if spec.kind == CHOICE:
            with pytest.raises(InputError, match="choose one of"):
                spec.check("not-a-choice")


def engine_subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def test_cli_options_are_the_declarations():
    covered = set()
    for command, sub in engine_subparsers().items():
        request_type = sub.get_default("request_type")
        if request_type is None:
            continue
        covered.add(request_type)
        actions = {a.dest: a for a in sub._actions}
        for name, spec, default in declared(request_type):
            if spec.cli is None:
                continue
            assert name in actions, f"zsstudio {command} has no option for {name}"
            action = actions[name]
            assert action.default == default, f"{command} {name}"
            if spec.kind == CHOICE:
                assert tuple(action.choices) == spec.choices, f"{command} {name}"
            if spec.kind == BOOL:
                assert isinstance(action, argparse.BooleanOptionalAction)
            if spec.range_text():
                assert spec.range_text() in action.help, f"{command} {name}"
    assert covered == set(REQUEST_TYPES), "every request has a command"


@pytest.fixture(scope="module")
def demo():
    from app import build_demo
    from engines.studio import Studio

    return build_demo(studio=Studio(device="cpu"))


def test_tab_controls_are_the_declarations(demo):
    controls = {
        block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)
    }
    checked = 0
    for request_type in REQUEST_TYPES:
        for name, spec, default in declared(request_type):
            control = controls.get(f"{request_type.__name__}-{name}")
            if control is None:
                continue
            checked += 1
            where = f"{request_type.__name__}.{name}"
            assert control.label.lower().startswith(spec.label.lower()), where
            if spec.kind in (INT, FLOAT):
                check_numeric(control, spec, default, where)
            elif spec.kind == CHOICE:
                assert [value for _, value in control.choices] == list(spec.choices), where
                assert control.value == default, where
            elif spec.kind == BOOL:
                assert control.value is default, where
    assert checked >= 25


def check_numeric(control, spec, default, where: str) -> None:
    """A slider has the declared range; a number box shows it in its info and has no bounds of
    its own, so a value past it reaches the request and is refused in the request's words."""
    if type(control).__name__ == "Number":
        assert control.minimum is None and control.maximum is None, where
        assert control.info.endswith(spec.range_text()), where
    else:
        assert control.minimum == spec.low and control.maximum == spec.high, where
    if default is None:
        assert control.value is None, where
    else:
        assert math.isclose(control.value, default), where
