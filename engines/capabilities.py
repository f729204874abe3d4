"""The capabilities the studio offers, what each owes its paper, and which exist yet."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Capability:
    key: str
    title: str
    engine_class: str  # "module:Class"
    tab_module: str
    paper: str
    paper_url: str
    papers_part: str
    ours: str

    @property
    def engine_module(self) -> str:
        return self.engine_class.split(":", 1)[0]

    def exists(self) -> bool:
        """A capability is offered once both its engine and its tab are in the tree."""
        return _module_exists(self.engine_module) and _module_exists(self.tab_module)

    def load_engine_class(self):
        module_name, class_name = self.engine_class.split(":", 1)
        return getattr(importlib.import_module(module_name), class_name)


def _module_exists(name: str) -> bool:
    """Whether module `name` is in this tree: found, and (a submodule) inside its package's
    folder. An editable install of another checkout can otherwise hand out its own copy of a
    submodule this checkout does not have."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return False
    if spec is None:
        return False
    parent, _, _ = name.rpartition(".")
    if not parent or spec.origin is None:
        return True
    folders = [Path(f).resolve() for f in importlib.import_module(parent).__path__]
    return any(folder in Path(spec.origin).resolve().parents for folder in folders)


CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        key="layout",
        title="Layout to image",
        engine_class="engines.layout:LayoutEngine",
        tab_module="tabs.layout",
        paper="Boundary Attention Constrained Zero-Shot Layout-To-Image Generation (BACON)",
        paper_url="https://arxiv.org/abs/2411.10495",
        papers_part="Guiding Stable Diffusion's cross-attention, aggregated through "
        "self-attention, into user boxes with boundary-constrained losses and latent "
        "optimisation in the early denoising steps; no fine-tuning.",
        ours="The paper released no code: loss weights, layers and schedules are ours, set "
        "after the open relatives (BoxDiff, layout guidance, R&B). Layout score by Grounding DINO.",
    ),
    Capability(
        key="video",
        title="Subject video",
        engine_class="engines.video:SubjectVideoEngine",
        tab_module="tabs.video",
        paper="DreamVideo-2: Zero-Shot Subject-Driven Video Customization with Precise Motion",
        paper_url="https://arxiv.org/abs/2410.13830",
        papers_part="A subject from one image moved along a box trajectory without tuning: "
        "reference attention to the subject image run as a one-frame video, masked with a "
        "blended box mask (1 inside, lambda_M = 0.75 outside); box-driven motion.",
        ours="No code or weights were released, and its mask-guided motion module and "
        "reweighted loss are trained: ours is a zero-shot approximation that replaces them with "
        "attention control (masked reference attention, IP-Adapter cross-attention masked to "
        "the box, subject-token attention boosted inside it) on AnimateDiff (SD 1.5 + motion "
        "adapter v1-5-2) + IP-Adapter. Metrics as the paper reports them (CLIP-T/I, DINO-I, "
        "mIoU, centroid distance). The subject is cut out by the photo's alpha, a mask, or "
        "optionally CLIPSeg (CIDAS/clipseg-rd64-refined, Apache-2.0).",
    ),
    Capability(
        key="speech",
        title="Speech",
        engine_class="engines.speech:SpeechEngine",
        tab_module="tabs.speech",
        paper="StyleTTS-ZS and StableVC (timbre and style from different speakers)",
        paper_url="https://arxiv.org/abs/2409.10058",
        papers_part="Zero-shot TTS from a short reference (StyleTTS-ZS); voice conversion that "
        "takes timbre and speaking style from two different speakers (StableVC, "
        "arXiv:2412.04724). We offer these tasks, not the papers' models.",
        ours="Neither paper released code or weights, so the same capabilities are composed from "
        "released parts: Pocket TTS (transformers) clones the voice; kNN-VC (WavLM-Large layer 6, "
        "k=4 cosine neighbours, its prematched HiFi-GAN) moves speech to the timbre clip; pitch "
        "median and range, speaking rate and loudness are measured (pYIN, syllable nuclei) and "
        "moved toward the style clip with Praat's PSOLA. Output is labelled synthetic.",
    ),
    Capability(
        key="gan",
        title="GAN adaptation",
        engine_class="engines.gan:GanAdaptEngine",
        tab_module="tabs.gan",
        paper="Improving Diversity in Zero-Shot GAN Adaptation with Semantic Variations (ICCV 2023)",
        paper_url="https://arxiv.org/abs/2308.10554",
        papers_part="Semantic variations of the target text and a directional moment loss, "
        "with EWC and relation consistency, on top of StyleGAN-NADA.",
        ours="No code was released: our implementation on a pure-PyTorch StyleGAN2 (loads the "
        "published rosinality checkpoints) and open_clip CLIP ViT-B/32. Normalisations the "
        "paper leaves open are our choice: unit directions, covariances over the row count, "
        "their Frobenius distance divided by the feature size, an empirical Fisher from one "
        "batch, relation rows without self-similarity. StyleGAN-NADA is offered alongside.",
    ),
    Capability(
        key="nerf",
        title="NeRF editing",
        engine_class="engines.nerf:NerfEditEngine",
        tab_module="tabs.nerf",
        paper="ED-NeRF: Efficient Text-Guided Editing of 3D Scene using Latent Space NeRF",
        paper_url="https://arxiv.org/abs/2310.02712",
        papers_part="A NeRF that renders Stable Diffusion's 4-channel VAE latents (64x64 for a "
        "512 px view) instead of RGB, a refinement layer (ResNet blocks + self-attention) mapping "
        "its render onto the VAE latent of the view, and editing with Delta Denoising Score "
        "(same noise and timestep for source and target, so only the prompt's change is "
        "applied).",
        ours="The paper released no code: our own pure-PyTorch TensoRF (vector-matrix) field with "
        "a latent head and an RGB head trained jointly, coarse-to-fine grid schedule, "
        "TensoRF's regularisers for fitting and none for editing (so what the guidance leaves "
        "alone stays), occupancy-grid sampling, scene normalisation, learning rates and step "
        "counts; the procedural example scene; held-out PSNR/SSIM and CLIP direction "
        "similarity and consistency as metrics. Views are fitted at 512 px by default (64x64 "
        "latents, the resolution SD 1.5's UNet was trained on), 256 px on a CPU. Backbones: "
        "the Stable Diffusion 1.5 VAE, UNet and text encoder; CLIP ViT-B/32 (open_clip) for the "
        "metrics.",
    ),
    Capability(
        key="compression",
        title="Image compression",
        engine_class="engines.compression:CompressionEngine",
        tab_module="tabs.compression",
        paper="Extreme Image Compression using Fine-tuned VQGANs (DCC 2024)",
        paper_url="https://arxiv.org/abs/2307.08265",
        papers_part="VQGAN tokens at under 0.05 bpp, variable rate by K-means-reduced "
        "codebooks, and a transformer that restores lost tokens.",
        ours="The paper's weights are not public: we use the aMUSEd VQGAN without fine-tuning, "
        "its masked transformer as entropy model (range coding) and for restoration.",
    ),
)

BY_KEY = {cap.key: cap for cap in CAPABILITIES}


def available() -> list[Capability]:
    return [cap for cap in CAPABILITIES if cap.exists()]


def offered(key: str) -> Capability:
    """The capability `key`, if this checkout offers it; InputError naming those it does."""
    from .errors import InputError

    capability = BY_KEY.get(key)
    if capability is None or not capability.exists():
        have = ", ".join(c.key for c in available()) or "none"
        raise InputError(f"No engine {key!r}; available: {have}.")
    return capability


def select(keys: list[str] | None) -> list[Capability]:
    """The offered capabilities named in `keys` (all offered ones for None)."""
    from .errors import InputError

    offered = available()
    if not keys:
        return offered
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        raise InputError(
            f"Unknown capability {', '.join(unknown)}; choose from {', '.join(BY_KEY)}."
        )
    missing = [k for k in keys if not BY_KEY[k].exists()]
    if missing:
        have = ", ".join(c.key for c in offered) or "none"
        raise InputError(f"Capability {', '.join(missing)} is not built yet; available: {have}.")
    return [BY_KEY[k] for k in keys]
