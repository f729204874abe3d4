"""What crosses between the app and a Ray Serve replica (no Ray needed): requests with their
input files as bytes, recipes naming the files where they are on the front end, errors by kind,
tensors on the CPU, writable arrays; the backend flags; and that the in-process app never
imports Ray."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engines import cli
from engines.base import Recipe, Result
from engines.cancel import CancelToken, cancellable, token_of
from engines.compression import CompressRequest, DecompressRequest, RestoreRequest
from engines.errors import InputError, ModelUnavailable, OutOfMemory, ServerError, StudioError
from engines.nerf import ReconstructRequest
from engines.serving.wire import (
    InputFile,
    error_event,
    on_host,
    pack_request,
    raise_error,
    restore_paths,
    unpacked,
    writable,
)

ROOT = Path(__file__).resolve().parents[1]


def test_input_files_travel_as_bytes_and_come_back_named_as_here(tmp_path):
    photo = tmp_path / "my photo.png"
    photo.write_bytes(b"\x89PNG not really")
    request = RestoreRequest(file=b"zsc bytes", lost_fraction=0.3, original=str(photo))
    packed, paths = pack_request(request)
    assert packed.original == InputFile("my photo.png", photo.read_bytes())
    assert packed.file == b"zsc bytes" and request.original == str(photo)  # a copy was packed
    assert paths == {"original": str(photo)}

    replica_folder = tmp_path / "replica"
    replica_folder.mkdir()
    with unpacked(packed, replica_folder) as local:
        there = Path(local.original)
        assert there.parent.parent == replica_folder and there.read_bytes() == photo.read_bytes()
        assert there.name == "my photo.png"
    recipe = Recipe("compression", {"task": "restore", "original": str(there), "file": None})
    result = restore_paths(Result(recipe), paths)
    assert result.recipe.params["original"] == str(photo)


def test_a_files_name_never_leads_out_of_the_replicas_folder(tmp_path):
    for name, kept in [("../../etc/passwd", "passwd"), ("..", "file"), ("a\\b.png", "b.png")]:
        request = CompressRequest(InputFile(name, b"x"))
        with unpacked(request, tmp_path) as local:
            assert Path(local.image) == tmp_path / "image" / kept


def test_values_that_are_no_file_here_are_left_to_the_replica(tmp_path):
    request = ReconstructRequest(scene="example")
    packed, paths = pack_request(request)
    assert packed.scene == "example" and paths == {}
    missing = str(tmp_path / "gone.png")
    assert pack_request(CompressRequest(missing))[0].image == missing


def test_a_folder_input_is_refused_with_what_to_give_instead(tmp_path):
    with pytest.raises(InputError, match="give it as a zip"):
        pack_request(ReconstructRequest(scene=str(tmp_path)))


@pytest.mark.parametrize(
    "error",
    [
        InputError("K must be one of 16, 64."),
        OutOfMemory("The cuda device ran out of memory.", retry=True),
        ModelUnavailable("compression.amused", "amused/amused-512", "zsstudio download", "gone"),
        ServerError("The replica stopped."),
    ],
)
def test_errors_keep_their_kind_message_and_plain_attributes(error):
    sent = error_event(error)
    with pytest.raises(type(error)) as raised:
        raise_error(sent)
    assert str(raised.value) == str(error)
    for name, value in vars(error).items():
        assert getattr(raised.value, name) == value


def test_an_engines_own_error_class_arrives_as_the_kind_it_extends():
    class CodebookError(InputError):
        pass

    sent = error_event(CodebookError("no such codebook"))
    assert sent["error"] == "InputError"
    with pytest.raises(InputError, match="^no such codebook$"):
        raise_error(sent)
    with pytest.raises(StudioError, match="odd"):
        raise_error({"kind": "error", "error": "NotOurs", "message": "odd"})


@dataclasses.dataclass(frozen=True)
class Frozen:
    weights: torch.Tensor
    name: str = "x"


def test_results_hold_cpu_tensors_and_writable_arrays():
    trained = torch.ones(2, requires_grad=True)  # what a replica holds: detached, to the CPU
    frozen = Frozen(trained)
    moved = on_host({"state": {"w": trained}, "parts": [frozen], "n": 3})
    assert moved["state"]["w"] is not trained and not moved["state"]["w"].requires_grad
    assert moved["state"]["w"].device.type == "cpu" and moved["n"] == 3
    assert moved["parts"][0] is frozen and not frozen.weights.requires_grad
    untouched = {"a": [1, 2]}
    assert on_host(untouched) is untouched

    locked = np.zeros((2, 2))
    locked.flags.writeable = False
    request = CompressRequest(locked)
    assert writable(request).image.flags.writeable
    free = np.zeros(3)
    assert writable([free])[0] is free


def test_the_progress_callback_carries_its_cancel_token():
    token = CancelToken()
    assert token_of(cancellable(lambda f, m: None, token)) is token
    assert token_of(lambda f, m: None) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ray-address", "10.0.0.1:6379", "run", "r.json"], "--ray-address needs --backend ray"),
        (["--backend", "ray", "--device", "cuda", "run", "r.json"], "--device is set per"),
        (["--backend", "ray", "--gpu-budget", "8", "run", "r.json"], "--gpu-budget is set per"),
    ],
)
def test_backend_flags_that_do_not_fit_exit_2(argv, message, capsys, tmp_path):
    recipe = Recipe("compression", {"task": "decompress", "file": None})
    recipe.save(tmp_path / "r.json")
    argv = [str(tmp_path / "r.json") if a == "r.json" else a for a in argv]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_backend_ray_without_ray_installed_says_how_to_install_it():
    code = (
        "import sys; sys.modules['ray'] = None\n"  # as if the scale extra were not installed
        "import app\n"
        "sys.exit(app.main(['--backend', 'ray']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "pip install 'zero-shot-studio[scale]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_in_process_app_and_cli_never_import_ray():
    code = (
        "import sys, app\n"
        "from engines import cli\n"
        "app.build_demo(device='cpu')\n"
        "cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_decompress_requests_of_bytes_stay_bytes():
    packed, paths = pack_request(DecompressRequest(b"abc"))
    assert packed.file == b"abc" and paths == {}


def test_backend_ray_with_no_cluster_there_exits_2_with_one_line():
    pytest.importorskip("ray")
    from app_server import free_port

    done = subprocess.run(
        [sys.executable, "app.py", "--backend", "ray", "--ray-address", f"127.0.0.1:{free_port()}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "No Ray cluster at 127.0.0.1:" in lines[0], done.stderr
    assert "zsstudio serve --config serve.yaml" in lines[0]
