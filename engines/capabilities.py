"""The capabilities the studio offers: where each one's parts are, and what it owes its paper."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Capability:
    """Everything the studio knows of one capability: its engine, tab, command-line module,
    evaluation protocol, ZeroGPU time and what it owes its paper. This tuple is the one place a
    capability is registered; `key` is also its engine's `name`, its table in models.toml and
    its application in serve.yaml (tests/test_capabilities.py checks all four agree)."""

    key: str
    title: str
    engine_class: str  # "module:Class"
    tab_module: str
    cli_module: str
    """A module with `add_commands(subparsers, make_studio)`: the engine's `zsstudio` commands."""
    eval_protocol: str | None
    """The module `zsstudio eval <key>` runs (plan, evaluator, summarise), if it has one."""
    gpu_seconds: int
    """What a ZeroGPU Space grants one model call of the tab."""
    long_run_gpu_seconds: int | None
    """The same for a long, streamed run (a GAN adaptation, a NeRF fit), if it has one."""
    paper: str
    paper_url: str
    papers_part: str
    ours: str

    @property
    def engine_module(self) -> str:
        return self.engine_class.split(":", 1)[0]

    def load_engine_class(self) -> type:
        module_name, class_name = self.engine_class.split(":", 1)
        return getattr(importlib.import_module(module_name), class_name)


CAPABILITIES: tuple[Capability, ...] = (
    Capability(
        key="layout",
        title="Layout to image",
        engine_class="engines.layout:LayoutEngine",
        tab_module="tabs.layout",
        cli_module="engines.layout.cli",
        eval_protocol="engines.evaluation.layout",
        gpu_seconds=120,
        long_run_gpu_seconds=None,
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
        cli_module="engines.video.cli",
        eval_protocol="engines.evaluation.video",
        gpu_seconds=300,
        long_run_gpu_seconds=None,
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
        cli_module="engines.speech.cli",
        eval_protocol="engines.evaluation.speech",
        gpu_seconds=60,
        long_run_gpu_seconds=None,
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
        cli_module="engines.gan.cli",
        eval_protocol="engines.evaluation.gan",
        gpu_seconds=60,
        long_run_gpu_seconds=600,
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
        cli_module="engines.nerf.cli",
        eval_protocol="engines.evaluation.nerf",
        gpu_seconds=120,
        long_run_gpu_seconds=600,
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
        "metrics, or ViT-L/14 as peers report (optional).",
    ),
    Capability(
        key="compression",
        title="Image compression",
        engine_class="engines.compression:CompressionEngine",
        tab_module="tabs.compression",
        cli_module="engines.compression.cli",
        eval_protocol="engines.evaluation.compression",
        gpu_seconds=60,
        long_run_gpu_seconds=None,
        paper="Extreme Image Compression using Fine-tuned VQGANs (DCC 2024)",
        paper_url="https://arxiv.org/abs/2307.08265",
        papers_part="VQGAN tokens at under 0.05 bpp, variable rate by K-means-reduced "
        "codebooks, and a transformer that restores lost tokens.",
        ours="The paper's weights are not public: we use the aMUSEd VQGAN without fine-tuning, "
        "its masked transformer as entropy model (range coding) and for restoration.",
    ),
)


def offered(key: str) -> Capability:
    """The capability `key`; InputError naming those there are."""
    from .errors import InputError

    for capability in CAPABILITIES:
        if capability.key == key:
            return capability
    raise InputError(f"No engine {key!r}; available: {', '.join(keys())}.")


def keys() -> list[str]:
    return [capability.key for capability in CAPABILITIES]


def select(names: list[str] | None) -> list[Capability]:
    """The capabilities named in `names` (all of them for None or none)."""
    from .errors import InputError

    if not names:
        return list(CAPABILITIES)
    unknown = [name for name in names if name not in keys()]
    if unknown:
        raise InputError(
            f"Unknown capability {', '.join(unknown)}; choose from {', '.join(keys())}."
        )
    return [offered(name) for name in names]
