"""The engines on Ray Serve, end to end on this machine: a local Ray with 2 CPUs (no dashboard,
torn down after), the compression engine on tiny aMUSEd models served by 2 replicas, the NeRF,
speech, layout, GAN and subject-video engines by one each, the app (`--backend ray`) as their
front end.

`-m "not ray"` deselects these; CI runs them (it installs the scale extra)."""

from __future__ import annotations

import os
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image, ImageDraw

try:
    import ray
except ImportError:  # the default install: CI installs the scale extra and must run these
    if os.environ.get("ZSS_CI"):
        raise
    pytest.skip("Ray Serve is not installed (pip install -e '.[scale]')", allow_module_level=True)

from app_server import served
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from serve_cluster import compression_config, local_ray, replica_env
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo
from tiny_gan import save_tiny_generator, save_tiny_open_clip
from tiny_speech import harmonic_tone, tiny_speech_models

import app
from engines import cli
from engines.base import Recipe
from engines.cancel import CancelToken, cancellable
from engines.capabilities import CAPABILITIES
from engines.compression import CompressRequest, DecompressRequest, RestoreRequest
from engines.errors import Cancelled, InputError
from engines.gan import AdaptRequest
from engines.gan.checkpoint import load_generator
from engines.layout import LayoutRequest
from engines.nerf import ReconstructRequest
from engines.nerf.example import write_example
from engines.registry import override_variable
from engines.serving.client import RayStudio
from engines.serving.config import deploy, read_config, validate
from engines.serving.deployment import DEPLOYMENT
from engines.speech import TTSRequest, VCRequest
from engines.studio import Studio
from engines.video import SubjectVideoRequest
from tabs.session_files import OUTPUTS

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_serve_yaml_is_a_ray_serve_config_of_buildable_apps():
    import importlib

    from ray.serve import Application

    config = read_config(ROOT / "serve.yaml")
    schema = validate(config)  # Ray's ServeDeploySchema, and our own rules
    assert {app.name for app in schema.applications} == {cap.key for cap in CAPABILITIES}
    for spec in schema.applications:
        module, _, name = spec.import_path.partition(":")
        builder = getattr(importlib.import_module(module), name)
        assert isinstance(builder(spec.args), Application)
        (deployment,) = spec.deployments
        assert deployment.name == DEPLOYMENT and deployment.ray_actor_options.num_gpus > 0
    with pytest.raises(InputError, match="no capability"):
        validate({"applications": [{**config["applications"][0], "args": {"engine": "teleport"}}]})
    with pytest.raises(InputError, match="Not a valid Ray Serve config"):
        validate({"applications": [{"name": "layout"}]})


def test_zsstudio_serve_checks_a_config(tmp_path, capsys):
    assert cli.main(["serve", "--config", str(ROOT / "serve.yaml"), "--check"]) == 0
    assert "a valid Ray Serve config for 6 apps" in capsys.readouterr().out
    broken = tmp_path / "serve.yaml"
    broken.write_text("applications:\n  - name: compression\n    import_path: elsewhere:app\n")
    assert cli.main(["serve", "--config", str(broken), "--check"]) == 2
    assert "import_path must be engines.serving.deployment:build_app" in capsys.readouterr().err


@pytest.fixture(scope="module")
def slow(tmp_path_factory) -> Path:
    """While this file exists, replicas wait as many seconds as it says at each progress
    report (the deployment's test hook)."""
    return tmp_path_factory.mktemp("serve-hook") / "slow"


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_sd15_dir, tiny_video_dirs, slow):
    base = tmp_path_factory.getbasetemp()
    env = replica_env(tiny_amused_in(base), base / "serve-cache", slow)
    config = compression_config(env, replicas=2, cpus=0.5)
    speech_models = {
        override_variable("speech", c): str(p) for c, p in tiny_speech_models().items()
    }
    gan_files = tmp_path_factory.mktemp("serve-gan")
    gan_models = {
        override_variable("gan", "cat256"): str(save_tiny_generator(gan_files / "cat.pt")),
        override_variable("gan", "clip"): str(save_tiny_open_clip(gan_files / "clip")),
    }
    gan_models[override_variable("gan", "clip_b16")] = gan_models[override_variable("gan", "clip")]
    engines = {  # one replica each, a fifth of a CPU: with compression's two, the 2 CPUs
        "nerf": {"ZSS_MODEL_NERF_SD15": str(tiny_sd15_dir)},
        "speech": speech_models,
        "layout": {override_variable("layout", "sd15"): str(tiny_sd15_dir)},
        "gan": gan_models,
        "video": {override_variable("video", c): str(p) for c, p in tiny_video_dirs.items()},
    }
    config["applications"] += [
        {
            **config["applications"][0],
            "name": key,
            "args": {"engine": key, "device": "cpu"},
            "runtime_env": {"env_vars": {**env, **models}},
            "deployments": [{"name": "EngineDeployment", "ray_actor_options": {"num_cpus": 0.2}}],
        }
        for key, models in engines.items()
    ]
    with local_ray(num_cpus=2):
        deploy(config, wait_s=240)
        yield RayStudio.connect()


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve-photo") / "photo.png"
    Image.fromarray(tiny_photo(72, 52)).save(path)
    return path


@pytest.fixture
def outputs(tmp_path, monkeypatch) -> Path:
    """The app's output folders, fresh for the test."""
    monkeypatch.setattr(OUTPUTS, "_root", tmp_path / "outputs")
    return tmp_path / "outputs"


@pytest.fixture(scope="module")
def front_end(studio):
    """The app on the Ray studio (what `python app.py --backend ray` serves), served here."""
    demo = app.build_demo(tabs=["compression"], studio=studio)
    with served(demo) as url:
        yield Client(url, verbose=False)


@pytest.fixture
def slowed(slow):
    def set_delay(seconds: float) -> None:
        slow.write_text(str(seconds))

    yield set_delay
    slow.unlink(missing_ok=True)


def replicas_of(app_name: str) -> dict[str, str]:
    """Replica id -> actor name, for one application's running replicas."""
    prefix = f"SERVE_REPLICA::{app_name}#"
    return {
        actor["name"].rsplit("#", 1)[1]: actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(prefix)
    }


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_requests_through_the_app_reach_both_replicas(
    studio, front_end, photo_file, outputs, slowed
):
    decoded, zsc, _, _, metrics, recipe, _ = front_end.predict(
        handle_file(str(photo_file)), 16, "fixed", "plain", api_name="/compress"
    )
    assert np.asarray(Image.open(decoded)).shape == (52, 72, 3)
    assert metrics["replica"] in replicas_of("compression")
    with zipfile.ZipFile(recipe) as bundle:  # the photo came back into the recipe, from here
        assert bundle.read("inputs/image-photo.png") == photo_file.read_bytes()

    slowed(0.4)  # the runs overlap, so the router spreads them
    jobs = [front_end.submit(handle_file(zsc), api_name="/decompress") for _ in range(4)]
    served_by = {job.result(timeout=60)[1]["replica"] for job in jobs}
    assert served_by == set(replicas_of("compression"))
    assert len(served_by) == 2


def test_progress_events_arrive_in_order(studio, tmp_path_factory, photo_file):
    base = tmp_path_factory.getbasetemp()
    local, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    try:
        zsc = local.engine("compression").run(CompressRequest(str(photo_file), 16)).zsc
        request = RestoreRequest(zsc, lost_fraction=0.5, seed=3, steps=6)
        here: list[tuple[float, str]] = []
        expected = local.engine("compression").run(request, lambda f, m: here.append((f, m)))
    finally:
        undo()
    there: list[tuple[float, str]] = []
    result = studio.engine("compression").run(request, lambda f, m: there.append((f, m)))
    assert there == here and len(there) >= 8
    assert [f for f, _ in there] == sorted(f for f, _ in there)
    assert np.array_equal(result.restored, expected.restored)


def test_input_error_crosses_as_the_users_message(studio, front_end, tmp_path):
    remote = studio.engine("compression")
    with pytest.raises(InputError, match=r"^No image given: upload a photo to compress\.$"):
        remote.run(CompressRequest(None, 16))
    not_zsc = tmp_path / "notes.zsc"
    not_zsc.write_bytes(b"not a zsc file at all")
    with pytest.raises(InputError) as in_process:  # refused before any model loads
        Studio(device="cpu").engine("compression").run(DecompressRequest(str(not_zsc)))
    with pytest.raises(InputError) as remotely:
        remote.run(DecompressRequest(str(not_zsc)))
    assert str(remotely.value) == str(in_process.value)
    with pytest.raises(AppError) as through_the_app:
        front_end.predict(handle_file(str(not_zsc)), api_name="/decompress")
    assert str(through_the_app.value) == str(in_process.value)


def test_cancel_stops_the_run_on_the_replica(studio, photo_file, slowed):
    remote = studio.engine("compression")
    zsc = remote.run(CompressRequest(str(photo_file), 16)).zsc
    cancelled_before = cancelled_runs(remote)
    slowed(1.0)  # each of the restore's steps now takes a second on the replica
    token = CancelToken()
    seen: list[float] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(fraction)
        token.cancel("test")

    started = time.monotonic()
    with pytest.raises(Cancelled, match="test"):
        remote.run(RestoreRequest(zsc, 0.5, steps=20), cancellable(progress, token))
    assert time.monotonic() - started < 5 and len(seen) == 1
    slowed(0)

    wait_for(
        lambda: cancelled_runs(remote) > cancelled_before,
        30,
        "a replica to count the cancelled run as cancelled",
    )
    assert remote.run(DecompressRequest(zsc)).image.shape == (52, 72, 3)


def test_cancel_while_queued_before_any_replica_took_it(studio, photo_file, slowed):
    remote = studio.engine("compression")
    zsc = remote.run(CompressRequest(str(photo_file), 16)).zsc
    slowed(1.0)
    tokens = [CancelToken() for _ in range(5)]
    outcomes: list[BaseException | None] = [None] * 5

    def send(index: int) -> None:
        request = RestoreRequest(zsc, 0.5, steps=20)
        try:
            remote.run(request, cancellable(lambda f, m: None, tokens[index]))
        except BaseException as err:  # what each call ended with
            outcomes[index] = err

    busy = [threading.Thread(target=send, args=(i,)) for i in range(4)]  # 2 replicas x 2
    for thread in busy:
        thread.start()
    wait_for(lambda: len(studio.status()["busy"] or "") and _running(studio) == 4, 30, "4 runs")
    queued = threading.Thread(target=send, args=(4,))
    queued.start()
    time.sleep(0.5)
    assert _running(studio) == 4  # the fifth waits for a free replica
    tokens[4].cancel("queued")
    queued.join(10)
    assert not queued.is_alive() and isinstance(outcomes[4], Cancelled)
    for token in tokens[:4]:
        token.cancel("done waiting")
    for thread in busy:
        thread.join(30)
    assert all(isinstance(outcome, Cancelled) for outcome in outcomes)


def _running(studio) -> int:
    return len([part for part in (studio.status()["busy"] or "").split(", ") if part])


def cancelled_runs(remote) -> int:
    """Runs cancelled on the replicas, as they count them (asking until each one answered)."""
    counts: dict[str, int] = {}
    ids = set(replicas_of(remote.key))
    for _ in range(100):
        status = remote.handle.status.remote().result(timeout_s=30)
        counts[status["replica"]] = status["runs"].get("cancelled", 0)
        if ids <= set(counts):
            break
    return sum(counts.values())


def test_a_replica_killed_mid_run_is_replaced(studio, front_end, photo_file, outputs, slowed):
    zsc = studio.engine("compression").run(CompressRequest(str(photo_file), 16)).zsc
    zsc_file = photo_file.with_suffix(".zsc")
    zsc_file.write_bytes(zsc)
    before = replicas_of("compression")
    slowed(3.0)
    job = front_end.submit(handle_file(str(zsc_file)), api_name="/decompress")
    busy = wait_for(lambda: studio.status()["busy"], 30, "the run to start on a replica")
    replica = busy.rsplit(" ", 1)[1]
    ray.kill(ray.get_actor(before[replica], namespace="serve"), no_restart=True)
    slowed(0)
    with pytest.raises(AppError, match="compression replica stopped during the run"):
        job.result(timeout=60)
    assert not [p for p in outputs.rglob("*") if p.is_file()]  # nothing half-written

    decoded, metrics = front_end.predict(handle_file(str(zsc_file)), api_name="/decompress")
    assert np.asarray(Image.open(decoded)).shape == (52, 72, 3)
    assert metrics["replica"] != replica

    def replaced():
        now = replicas_of("compression")
        app_status = ray.serve.status().applications["compression"]
        running = next(iter(app_status.deployments.values())).replica_states.get("RUNNING", 0)
        return len(now) == 2 and replica not in now and running == 2

    wait_for(replaced, 120, "Serve to replace the killed replica")


def test_a_recipe_runs_again_through_the_deployments(studio, photo_file, tmp_path, capsys):
    first = studio.engine("compression").run(CompressRequest(str(photo_file), 64, "model"))
    assert Path(first.recipe.params["image"]) == photo_file  # named where it is here
    bundle = first.recipe.save_zip(tmp_path / "recipe.zip")
    out = tmp_path / "again"
    assert cli.main(["--backend", "ray", "run", str(bundle), "-o", str(out)]) == 0
    assert (out / "compressed.zsc").read_bytes() == first.zsc
    again = Recipe.load(out / "recipe.json")
    assert Path(again.params["image"]).read_bytes() == photo_file.read_bytes()


def test_stop_keeps_the_long_run_so_far(studio, tmp_path):
    example = write_example(tmp_path / "example", 32)
    scene = tmp_path / "scene.zip"
    with zipfile.ZipFile(scene, "w") as bundle:
        for path in example.rglob("*"):
            bundle.write(path, path.relative_to(example))
    remote = studio.engine("nerf")
    request = ReconstructRequest(
        scene=str(scene),
        resolution=32,
        steps=5000,
        grid=16,
        samples=24,
        batch_rays=256,
        preview_every=10,
    )
    run = remote.start(request)
    stages = []
    for update in run:
        stages.append(update.stage)
        if update.stage == "fit" and update.step >= 10:
            assert remote.cancel(run.id)
            break
    result = run.result(timeout=120)
    assert result.cancelled and 10 <= result.steps_done < 5000
    assert result.scene and result.metrics["replica"] in replicas_of("nerf")
    assert result.recipe.params["scene"] == str(scene)


def test_speech_clips_travel_as_bytes_and_come_back_as_audio(studio, tmp_path):
    """Audio inputs from the front end's disk reach the replica as bytes; the voice clip's
    copy is gone with the replica's folder, and the recipe names the clip where it is here."""
    voice, source = tmp_path / "voice.wav", tmp_path / "source.flac"
    sf.write(voice, harmonic_tone(120.0, 3.0, 16000, 0.05, 4), 16000, subtype="PCM_16")
    sf.write(source, harmonic_tone(150.0, 2.0, 44100, 0.05, 5), 44100)
    remote = studio.engine("speech")

    spoken = remote.run(TTSRequest(text="Hello there. Bye now.", voice=str(voice), seed=3))
    assert spoken.sample_rate == 24000 and spoken.duration > 0.5
    assert np.all(np.isfinite(spoken.audio)) and spoken.metrics["sentences"] == 2
    assert spoken.metrics["replica"] in replicas_of("speech")
    assert spoken.recipe.params["voice"] == str(voice)

    converted = remote.run(VCRequest(source=str(source), voice=str(voice), k=2))
    assert converted.duration == pytest.approx(2.0, abs=0.1)
    assert converted.recipe.params["source"] == str(source)
    with pytest.raises(InputError, match="voice"):
        remote.run(VCRequest(source=str(source), voice=str(tmp_path / "absent.wav")))


def test_layout_runs_on_its_replica_with_its_boxes(studio):
    remote = studio.engine("layout")
    request = LayoutRequest(
        prompt="a cat on a sofa",
        boxes=[("a cat", 0, 0, 32, 64)],
        width=64,
        height=64,
        steps=2,
        seed=5,
        score=False,
    )
    result = remote.run(request)
    assert result.image.size == (64, 64) and result.overlay.size == (64, 64)
    assert result.heatmaps and result.metrics["replica"] in replicas_of("layout")
    again = remote.run(LayoutRequest(**request.to_params()))  # same seed, same image
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image))


def test_gan_adaptation_stops_on_its_replica_and_its_generator_comes_back(studio, tmp_path):
    remote = studio.engine("gan")
    request = AdaptRequest(
        source="photo",
        target="pencil sketch",
        iterations=400,
        batch=3,
        preview_every=1,
        stage1_iterations=20,
        eval_samples=8,
        grid_size=3,
    )
    run = remote.start(request)
    for update in run:
        if update.stage == "adapt" and update.step >= 2:
            assert remote.cancel(run.id)
            break
    result = run.result(timeout=120)
    assert result.cancelled and 2 <= result.iterations_done < 400
    assert result.metrics["replica"] in replicas_of("gan")
    generator, _ = load_generator(result.save_generator(tmp_path / "partial.pt"))
    images = generator(generator.mapping(torch.randn(2, 32)))
    assert torch.isfinite(images).all()


def test_subject_video_runs_on_its_replica_with_its_box_controls(studio, tmp_path):
    subject = tmp_path / "subject.png"
    image = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((8, 8, 40, 40), fill=(220, 40, 40, 255))
    image.save(subject)
    request = SubjectVideoRequest(
        prompt="a red toy robot walking on a table",
        subject=str(subject),
        subject_phrase="toy robot",
        keyframes=[(0, 0.0, 0.25, 0.5, 0.75), (7, 0.5, 0.25, 1.0, 0.75)],
        frames=8,
        width=256,
        height=256,
        steps=1,
        seed=3,
        metrics=False,
    )
    result = studio.engine("video").run(request)
    assert result.frames.shape == (8, 256, 256, 3)
    assert result.metrics["controls"] != "none"  # the box controls ran on the replica
    assert result.metrics["replica"] in replicas_of("video")
    assert result.recipe.params["subject"] == str(subject)


LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def test_every_ray_process_stays_on_loopback(studio):
    """With the six applications up, no Ray process (GCS, raylet, workers, replicas) listens on
    or talks to an address other than loopback; Ray 2.60 would otherwise move a loopback node
    address onto the machine's interface (tests/serve_cluster.py). One exception Ray does not
    let us configure: each Serve replica's inter-deployment gRPC server binds the wildcard
    address (`"[::]:0"` hard-coded in ray/serve/_private/replica.py, token-authenticated); no
    process connects through it to anything but loopback."""
    import psutil

    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    seen, outside = 0, []
    for process in psutil.process_iter(["name", "cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if process.pid == os.getpid() or "ray" not in command:
            continue
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        seen += 1
        replica = process.info["name"].startswith("ray::ServeReplica:")
        for connection in connections:
            wildcard_listen = connection.status == "LISTEN" and connection.laddr.ip in ("::", "")
            if replica and wildcard_listen:
                continue  # Ray Serve's hard-coded inter-deployment server (above)
            for address in (connection.laddr, connection.raddr):
                if address and address.ip not in LOOPBACK:
                    outside.append((process.info["name"], address.ip, connection.status))
    assert seen >= 3  # GCS, raylet and the replicas' workers were looked at
    assert outside == [], sorted(set(outside))


def test_an_engine_not_deployed_is_named_with_what_is(studio):
    """Runs last: it takes the layout application off the cluster."""
    from ray import serve

    serve.delete("layout")
    fresh = RayStudio.connect()  # the module's studio keeps its layout handle
    with pytest.raises(
        InputError,
        match=r"layout engine is not deployed .*\(deployed: video, speech, gan, nerf, compression\)",
    ):
        fresh.engine("layout")
