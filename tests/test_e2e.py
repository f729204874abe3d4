"""The launched app, called through gradio_client as an API user would."""

from __future__ import annotations

import pytest
from app_server import served
from gradio_client import Client
from gradio_client.exceptions import AppError

import app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client():
    demo = app.build_demo(device="cpu")
    with served(demo) as url:
        yield Client(url, verbose=False)


def test_system_status_endpoint(client):
    status = client.predict(api_name="/system_status")
    assert status["device"] == "cpu (float32)"
    assert status["loaded"] == {}


def test_input_error_reaches_the_client_as_its_message(client):
    with pytest.raises(AppError, match="Unknown engine 'teleport'; choose all or one of"):
        client.predict("teleport", api_name="/release_engine")
    with pytest.raises(AppError, match="Engine 'compression' is not loaded"):
        client.predict("compression", api_name="/release_engine")


def test_release_all_is_fine_with_nothing_loaded(client):
    assert client.predict("all", api_name="/release_engine")["loaded"] == {}
