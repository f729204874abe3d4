"""Reading and writing rosinality-format StyleGAN2 checkpoints ({"g_ema": state_dict, ...}).

Files are read with `torch.load(weights_only=True)`: tensors and plain containers only, never a
pickle that runs code. The generator's shape is inferred from the state dict, then loaded strictly.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import torch

from ..errors import InputError
from ..outputs import write_bytes
from .stylegan2 import Generator, GeneratorConfig

_STYLE_KEY = re.compile(r"style\.(\d+)\.weight")
_TO_RGB_KEY = re.compile(r"to_rgbs\.(\d+)\.conv\.weight")


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's dict, refusing anything that is not a tensor-only torch file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Generator file {path} does not exist.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):
            raise InputError(
                f"{path.name} is not a plain StyleGAN2 state dict: it holds Python objects that "
                "would need code execution to load, which is refused. Save it as "
                '{"g_ema": generator.state_dict()} with torch.save.'
            ) from err
        raise InputError(
            f"{path.name} is not a readable PyTorch checkpoint. "
            'Expected a .pt file saved as {"g_ema": state_dict}.'
        ) from err
    except Exception as err:  # not a torch file at all (zip/pickle errors vary by version)
        raise InputError(
            f"{path.name} is not a readable PyTorch checkpoint ({type(err).__name__}). "
            'Expected a .pt file saved as {"g_ema": state_dict}.'
        ) from err
    if not isinstance(data, dict):
        raise InputError(f"{path.name} holds a {type(data).__name__}, not a checkpoint dict.")
    return data


def generator_state(data: dict, name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The `g_ema` state dict of a checkpoint, checked to be name -> tensor."""
    state = data.get("g_ema")
    if not isinstance(state, dict) or not state:
        keys = ", ".join(sorted(map(str, data))[:6]) or "nothing"
        raise InputError(
            f"{name} has no `g_ema` generator state dict (it holds: {keys}). "
            "Expected a rosinality/StyleGAN-NADA StyleGAN2 checkpoint."
        )
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise InputError(f"{name}: `g_ema` must map parameter names to tensors.")
    for key, tensor in state.items():
        check_dense(tensor, f"{name}: `{key}`")
    return state


def check_dense(tensor: torch.Tensor, what: str) -> None:
    """Refuse a tensor whose storage is smaller than its shape: a zero-stride (expanded) tensor
    keeps a file tiny and becomes gigabytes the first time an operation copies it."""
    if not tensor.is_floating_point():
        raise InputError(f"{what} holds {tensor.dtype} values; a generator's weights are floats.")
    stored = tensor.untyped_storage().nbytes()
    needed = tensor.numel() * tensor.element_size()
    if stored < needed or any(
        st == 0 and n > 1 for st, n in zip(tensor.stride(), tensor.shape, strict=True)
    ):
        raise InputError(
            f"{what} declares shape {tuple(tensor.shape)} ({needed / 2**20:.0f} MB) over "
            f"{stored} stored bytes; a checkpoint stores every value it declares."
        )


MAX_RESOLUTION = 1024  # FFHQ, the largest published StyleGAN2
# The published configs (rosinality's config-f: 512-d styles, 8 mapping layers, at most 512
# channels) with headroom; anything wider is not a StyleGAN2 we can run, only an allocation.
MAX_STYLE_DIM = 1024
MAX_MAPPING_LAYERS = 16
MAX_CHANNELS = 1024


def config_from_state(state: dict[str, torch.Tensor], name: str = "checkpoint") -> GeneratorConfig:
    """Resolution, mapping depth, style size and channel widths, read off the tensor shapes."""
    try:
        mlp = sorted(int(m.group(1)) for k in state if (m := _STYLE_KEY.fullmatch(k)))
        rgb_blocks = sorted(int(m.group(1)) for k in state if (m := _TO_RGB_KEY.fullmatch(k)))
        style_dim = state["style.1.weight"].shape[1]
        channels = {4: state["input.input"].shape[1]}
        for block in rgb_blocks:
            channels[2 ** (block + 3)] = state[f"convs.{2 * block}.conv.weight"].shape[1]
    except (KeyError, IndexError) as err:
        raise InputError(
            f"{name} is not a StyleGAN2 generator in rosinality's layout (missing {err})."
        ) from err
    if mlp != list(range(1, len(mlp) + 1)) or rgb_blocks != list(range(len(rgb_blocks))):
        raise InputError(f"{name}: mapping or synthesis layers are not numbered consecutively.")
    widest = max(channels.values())
    if style_dim > MAX_STYLE_DIM or len(mlp) > MAX_MAPPING_LAYERS or widest > MAX_CHANNELS:
        raise InputError(
            f"{name} describes a generator with {style_dim}-d styles, {len(mlp)} mapping layers "
            f"and up to {widest} channels; StyleGAN2 generators up to {MAX_STYLE_DIM}-d styles, "
            f"{MAX_MAPPING_LAYERS} mapping layers and {MAX_CHANNELS} channels are supported."
        )
    if 2 ** (len(rgb_blocks) + 2) > MAX_RESOLUTION:
        raise InputError(
            f"{name} describes a {2 ** (len(rgb_blocks) + 2)} px generator; StyleGAN2 "
            f"generators up to {MAX_RESOLUTION} px are supported."
        )
    return GeneratorConfig(
        size=2 ** (len(rgb_blocks) + 2),
        style_dim=int(style_dim),
        n_mlp=len(mlp),
        channels=tuple(sorted((r, int(c)) for r, c in channels.items())),
    )


def build_generator(state: dict[str, torch.Tensor], name: str = "checkpoint") -> Generator:
    """A Generator of the state dict's shape, loaded with strict=True (on the CPU)."""
    config = config_from_state(state, name)
    with torch.device("meta"):
        generator = Generator(config)
    try:
        generator.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        expected = set(generator.state_dict())
        missing = sorted(expected - set(state))[:5]
        unexpected = sorted(set(state) - expected)[:5]
        detail = f"missing {missing}, unexpected {unexpected}" if missing or unexpected else err
        raise InputError(f"{name} does not match the StyleGAN2 layout: {detail}.") from err
    return generator.float().eval()


def load_generator(path: str | Path) -> tuple[Generator, torch.Tensor | None]:
    """The generator in a checkpoint file and its stored mean W (`latent_avg`), if any."""
    name = Path(path).name
    data = read_checkpoint(path)
    generator = build_generator(generator_state(data, name), name)
    latent_avg = data.get("latent_avg")
    if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != generator.config.style_dim:
        latent_avg = None
    else:
        latent_avg = latent_avg.reshape(-1).float()
    return generator, latent_avg


def checkpoint_bytes(generator: Generator, latent_avg: torch.Tensor | None = None) -> bytes:
    """{"g_ema": state_dict, "latent_avg": mean W} as StyleGAN2 tools expect, as file bytes."""
    data = {"g_ema": {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}}
    if latent_avg is not None:
        data["latent_avg"] = latent_avg.detach().cpu().clone()
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


def save_generator(
    generator: Generator, path: str | Path, latent_avg: torch.Tensor | None = None
) -> Path:
    """Write the generator's checkpoint (`checkpoint_bytes`) to `path`, atomically."""
    return write_bytes(Path(path), checkpoint_bytes(generator, latent_avg))
