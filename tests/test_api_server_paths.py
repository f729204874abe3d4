"""The API page names no file of the server's: no endpoint's parameter default is a path in
Gradio's temp folder (issue: the video canvas default showed it in /gradio_api/info; the video
endpoint now takes plain keyframes, and the canvas is the page's alone)."""

from __future__ import annotations

import json
import os
import tempfile

import app


def test_no_parameter_default_names_a_server_path():
    demo = app.build_demo(device="cpu")
    temp = os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir()
    for name, endpoint in demo.get_api_info()["named_endpoints"].items():
        for parameter in endpoint["parameters"]:
            shown = json.dumps(parameter.get("parameter_default"))
            assert temp not in shown, f"{name}({parameter['parameter_name']}) shows {shown}"
