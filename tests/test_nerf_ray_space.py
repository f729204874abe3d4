"""Forward-facing and unbounded captures: NDC rays and mip-NeRF 360's contraction, chosen from
the poses. On synthetic captures ray traced by our own code (engines/nerf/synthetic.py), the
surface points the cameras see must fall inside the field's domain, and a tiny fit must reach a
set held-out PSNR."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engines.nerf.cameras import Cameras
from engines.nerf.field import FieldConfig
from engines.nerf.fit import FitSettings, Fitter
from engines.nerf.model import LatentNerf, NerfConfig
from engines.nerf.ray_space import CONTRACT, NDC, RaySpace, contract
from engines.nerf.refine import RefinerConfig
from engines.nerf.scene_file import SceneHeader, load_scene_bytes, scene_bytes
from engines.nerf.scenes import load_scene
from engines.nerf.synthetic import FORWARD_FACING, UNBOUNDED, write_capture

SIZE = (32, 24)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    """kind -> (folder, surface points its cameras see)."""
    root = tmp_path_factory.mktemp("spaces")
    return {
        kind: (root / kind, write_capture(root / kind, kind, SIZE))
        for kind in (FORWARD_FACING, UNBOUNDED)
    }


def inside_fraction(scene, points: np.ndarray) -> float:
    mapped = points @ scene.world_to_scene[:, :3].T + scene.world_to_scene[:, 3]
    field = scene.space.to_field(torch.from_numpy(mapped))
    return float((field.abs() <= 1).all(dim=-1).double().mean())


def test_ndc_sends_the_near_plane_to_minus_one_and_infinity_to_one():
    space = RaySpace(NDC, focal=20.0, width=32, height=24, near=1.0)
    points = torch.tensor([[0.0, 0.0, -1.0], [0.3, -0.2, -1e9], [0.5, 0.25, -1.0]])
    mapped = space.to_field(points)
    assert mapped[0, 2] == pytest.approx(-1) and mapped[1, 2] == pytest.approx(1, abs=1e-6)
    # the image corner's ray at the near plane lands on the frustum's corner
    assert mapped[2, :2].tolist() == pytest.approx([20 / 16 * 0.5, 20 / 12 * 0.25])


def test_ndc_samples_are_the_warped_points_of_the_ray():
    space = RaySpace(NDC, focal=20.0, width=32, height=24, near=1.0)
    origins = torch.tensor([[0.1, -0.05, 0.0], [-0.2, 0.1, 0.1]], dtype=torch.float64)
    directions = torch.nn.functional.normalize(
        torch.tensor([[0.1, 0.05, -1.0], [-0.2, 0.1, -1.0]], dtype=torch.float64), dim=-1
    )
    samples = space.samples(origins, directions, 16, jitter=False)
    for ray in range(2):
        for point in samples.points[ray]:
            # a warped sample, mapped back to the scene, lies on the ray
            z = 2 * space.near / (point[2] - 1)
            x = point[0] * z / (-space.focal / 16)
            y = point[1] * z / (-space.focal / 12)
            offset = torch.stack([x, y, z]) - origins[ray]
            assert torch.linalg.cross(offset, directions[ray]).norm() < 1e-9


def test_contraction_keeps_the_unit_ball_and_squeezes_the_rest_below_two():
    near = torch.tensor([[0.3, -0.4, 0.5]])
    assert torch.equal(contract(near), near)
    far = torch.tensor([[1e6, 0.0, 0.0], [0.0, 3.0, 4.0]])
    assert contract(far)[0, 0] == pytest.approx(2.0, abs=1e-5)
    assert contract(far)[1].norm() == pytest.approx(2 - 1 / 5)
    space = RaySpace(CONTRACT)
    origins = torch.zeros(1, 3)
    samples = space.samples(origins, torch.tensor([[0.0, 0.0, 1.0]]), 64, jitter=False)
    assert (samples.points.norm(dim=-1) < 1).all()
    assert samples.points[0, -1].norm() > 0.99  # the last samples reach (almost) infinity
    assert samples.deltas.sum() == pytest.approx(1.0 - 0.025, abs=1e-3)  # radius 2 - near, halved


@pytest.mark.parametrize(("kind", "space"), [(FORWARD_FACING, NDC), (UNBOUNDED, CONTRACT)])
def test_what_the_cameras_see_falls_inside_the_fields_domain(captures, kind, space):
    folder, points = captures[kind]
    scene = load_scene(folder, SIZE[0])
    assert scene.space.kind == space, scene.notes
    assert inside_fraction(scene, points) >= 0.95
    box = load_scene(folder, SIZE[0], space="box")  # what the box alone holds
    assert inside_fraction(box, points) < 0.6


def test_contracted_rays_start_at_the_capture_nearest_depth_and_clip_nothing_seen(captures):
    """The cameras of an unbounded capture sit inside the contracted domain, so rays starting
    at the lens leave room for floaters only one camera sees; they start at 0.9 of the
    nearest depth the LLFF bounds record: before every surface point the cameras see, and
    past half the distance to the nearest."""
    from engines.nerf.sampler import MIN_NEAR

    folder, points = captures[UNBOUNDED]
    scene = load_scene(folder, SIZE[0])
    assert scene.space.start > 4 * MIN_NEAR
    mapped = points @ scene.world_to_scene[:, :3].T + scene.world_to_scene[:, 3]
    per_camera = mapped.reshape(len(scene.c2w), -1, 3)
    distances = np.linalg.norm(per_camera - scene.c2w[:, None, :, 3], axis=-1)
    nearest = float(distances.min())
    assert 0.5 * nearest < scene.space.start < nearest
    loaded, _ = load_scene_bytes(scene_bytes(tiny_model(scene), SceneHeader()))
    assert loaded.config.space.start == scene.space.start  # it travels in the scene file


def test_a_forward_facing_transforms_json_gets_ndc_too(captures, tmp_path):
    from engines.nerf.cameras import llff_to_opengl

    folder, points = captures[FORWARD_FACING]
    data = np.load(folder / "poses_bounds.npy")
    poses = llff_to_opengl(data[:, :15].reshape(-1, 3, 5)[:, :, :4])
    frames = [
        {
            "file_path": str(folder / "images" / f"{i:03d}.png"),
            "transform_matrix": np.vstack([pose, [0, 0, 0, 1]]).tolist(),
        }
        for i, pose in enumerate(poses)
    ]
    target = tmp_path / "ns"
    (target / "images").mkdir(parents=True)
    for frame in frames:
        name = "images/" + frame["file_path"].rsplit("/", 1)[-1]
        (target / name).write_bytes(open(frame["file_path"], "rb").read())
        frame["file_path"] = name
    focal = float(data[0, 14])
    (target / "transforms.json").write_text(json.dumps({"fl_x": focal, "frames": frames}))
    scene = load_scene(target, SIZE[0])
    assert scene.space.kind == NDC
    assert inside_fraction(scene, points) >= 0.95


def tiny_model(scene) -> LatentNerf:
    torch.manual_seed(0)
    config = NerfConfig(
        scene.width,
        scene.height,
        samples=48,
        space=scene.space,
        field=FieldConfig(32, 32, 4, 8, 12, 32),
        refiner=RefinerConfig(channels=8, blocks=1, groups=4, heads=2),
    )
    cameras = Cameras.from_arrays(scene.c2w, scene.intrinsics, scene.width, scene.height)
    return LatentNerf(config, cameras, scene.train, scene.test)


def tiny_fit(scene, steps: int) -> tuple[float, float, LatentNerf]:
    model = tiny_model(scene)
    settings = FitSettings(steps=steps, batch_rays=512, lr_grid=0.05, lr_network=3e-3)
    fitter = Fitter(model, torch.from_numpy(scene.images), None, settings)
    before, _ = fitter.heldout()
    fitter.run()
    after, _ = fitter.heldout()
    return before, after, model


@pytest.mark.parametrize(("kind", "floor"), [(FORWARD_FACING, 20.0), (UNBOUNDED, 18.0)])
def test_a_tiny_fit_reaches_the_set_heldout_psnr(captures, kind, floor):
    scene = load_scene(captures[kind][0], SIZE[0])
    before, after, model = tiny_fit(scene, 300)
    assert before < 10 and after > floor, (before, after)
    data = scene_bytes(model, SceneHeader())
    loaded, _ = load_scene_bytes(data)
    assert loaded.config.space == scene.space  # the ray space travels in the scene file
