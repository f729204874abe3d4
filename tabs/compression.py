"""The Image compression tab: VQGAN-token files under 0.05 bpp, JPEG/WebP beside them, decoding
uploaded .zsc files, and restoring lost tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from engines.capabilities import offered
from engines.compression import (
    CompressRequest,
    CompressResult,
    DecompressRequest,
    RestoreRequest,
)
from engines.evaluation.compression import image_curve
from engines.fields import declaration
from engines.interface import StudioInterface
from engines.outputs import png_bytes, write_bytes

from .common import (
    RECIPE_LABEL,
    cpu_notice,
    intro,
    metrics_rows,
    metrics_table,
    recipe_file,
)
from .examples import examples
from .forms import Call, Form, connect
from .uploads import image_input

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "compression"
EXAMPLES = ("astronaut.png", "coffee.png", "chelsea.png")
CPU_SLOW = (
    "K-means for a new K, the range coder and restoration take tens of seconds each; the "
    "fixed-length coder is the quick one."
)
RATE_HEADERS = ["codec", "setting", "bytes", "bpp", "PSNR (dB)", "MS-SSIM"]

INTRO = """\
Drop in a photo and get a real compressed file at a few hundredths of a bit per pixel: the
image becomes a grid of VQGAN tokens (one per 16x16 patch), each token one of **K** codebook
entries, and the tokens are entropy-coded. **The paper's** (Extreme Image Compression using
Fine-tuned VQGANs, DCC 2024): VQGAN tokens, variable rate by K-means-clustering the codebook,
a transformer that restores lost tokens. **Ours:** the paper's fine-tuned weights are not
public, so we use aMUSEd's VQGAN as released (no fine-tuning: expect lower quality than the
paper at the same K), and aMUSEd's masked transformer both as the entropy model (range coding,
12 passes) and for restoration. Bits per pixel count every byte of the file, header included.
MS-SSIM needs images over 160 px a side; smaller ones show single-scale SSIM. LPIPS is not
shown (its network weights are not available offline).
"""


def _png(folder: Path, name: str, image) -> str:
    return str(write_bytes(folder / f"{name}.png", png_bytes(image)))


def _rate_rows(rates: list[dict]) -> list[list]:
    def rounded(value, figures=4):
        """Significant figures, not decimals: a bpp of 2.2e-05 must not show as 0."""
        return None if value is None else float(f"{float(value):.{figures}g}")

    return [
        [
            row["codec"],
            row["setting"],
            row["bytes"],
            rounded(row["bpp"]),
            rounded(row["psnr_db"]),
            rounded(row["ms_ssim"]),
        ]
        for row in rates
    ]


def _examples() -> list[list]:
    """The shipped photos at the declared defaults, in the compress form's order."""
    defaults = [declaration(CompressRequest, name)[1] for name in ("codebook_size", "coder")]
    return [[str(ASSETS / name), *defaults] for name in EXAMPLES]


def _compressed(result: CompressResult, stem: str, call: Call) -> dict[str, Any]:
    """The compress outputs by name, their files written into this run's folder."""
    folder = call.folder()
    zsc = write_bytes(folder / f"{stem}.zsc", result.zsc)
    ours = _png(folder, "ours", result.decoded)
    gallery = [(_png(folder, "original", result.original), "original")]
    gallery.append((ours, f"ours: {len(result.zsc)} bytes"))
    for base in result.baselines:
        name = f"{base.codec}-{base.mode}".replace(" ", "-")
        gallery.append((_png(folder, name, base.decoded), f"{base.label}: {base.nbytes} B"))
    return {
        "decoded": ours,
        "zsc_file": str(zsc),
        "rates": _rate_rows(result.rates),
        "comparison": gallery,
        "metrics": metrics_rows(result),
        "recipe": recipe_file(result, folder),
    }


def _compress_outputs() -> dict[str, Any]:
    with gr.Column():
        decoded = gr.Image(label="Decoded from the .zsc file", type="filepath", interactive=False)
        zsc_file = gr.File(
            label=".zsc file (decode it in the next tab)", interactive=False, elem_id="compress-zsc"
        )
    return {"decoded": decoded, "zsc_file": zsc_file}


def build_compress(studio: StudioInterface) -> tuple[gr.File, gr.Image]:
    """The Compress tab; returns its .zsc file and photo, which the restore section uses."""
    form = Form(CompressRequest)
    with gr.Row(render=False) as work:  # shown under the examples
        with gr.Column():
            image = form.add(
                "image",
                image_input(
                    label="Photo (up to 2048 px a side)", type="filepath", elem_id="compress-photo"
                ),
            )
            form("codebook_size")
            form("coder")
            with gr.Row():
                button = gr.Button("Compress", variant="primary")
                cancel = gr.Button("Cancel", variant="stop")
            with gr.Accordion("Advanced", open=False):
                form("kmeans")
        outputs = _compress_outputs()
    examples(_examples(), list(form.inputs.values())[:3], "Compress")
    work.render()
    outputs["rates"] = gr.Dataframe(
        headers=RATE_HEADERS, label="Rate and quality, measured on this image"
    )
    outputs["comparison"] = gr.Gallery(
        label="Side by side: ours and the classical codecs (decoded, original size)",
        columns=4,
        height="auto",
    )
    with gr.Row():
        outputs["metrics"] = metrics_table("Measured")
        outputs["recipe"] = gr.File(
            label=RECIPE_LABEL, interactive=False, elem_id="compress-recipe"
        )
    outputs["rd_plot"] = gr.Image(
        label="Rate-distortion of this image: ours at each K vs JPEG/WebP/AVIF qualities",
        type="filepath",
        interactive=False,
    )

    def compress(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """Compress a photo into a .zsc file of VQGAN tokens, measured beside JPEG and WebP."""
        result = studio.engine("compression").run(CompressRequest(**values), call.progress)
        stem = Path(values["image"]).stem if values["image"] else "image"
        shown = _compressed(result, stem, call)
        _, png = image_curve(  # progress: Cancel also stops the curve between its K values
            studio.engine("compression"),
            result.original,
            coder=values["coder"],
            progress=call.progress,
        )
        shown["rd_plot"] = str(write_bytes(call.folder() / f"{stem}-rd.png", png))
        return shown

    connect(
        button.click,
        compress,
        form,
        outputs,
        api_name="compress",
        cancel=cancel,
        gpu_duration=offered("compression").gpu_seconds,
    )
    return outputs["zsc_file"], image


def build_restore(studio: StudioInterface, zsc_file: gr.File, image: gr.Image) -> None:
    """Lose some of the compressed file's tokens and restore them, measured against the photo."""
    form = Form(RestoreRequest)
    form.add("file", zsc_file)
    gr.Markdown(
        "Drop a fraction of the file's tokens (as if lost in transmission), then fill them "
        "MaskGIT-style with the transformer, or naively with the nearest received token. "
        "PSNR is against the photo above."
    )
    with gr.Row():
        form("lost_fraction")
        form("seed")
        button = gr.Button("Lose and restore")
        cancel = gr.Button("Cancel", variant="stop")
    form.add("original", image)
    with gr.Row():
        restored = gr.Image(label="Restored (transformer)", interactive=False)
        naive = gr.Image(label="Naive fill (nearest token)", interactive=False)
    metrics = metrics_table("Measured")
    outputs = {"restored": restored, "naive": naive, "metrics": metrics}

    def restore_tokens(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """Drop a fraction of a .zsc file's tokens and restore them with the transformer."""
        result = studio.engine("compression").run(RestoreRequest(**values), call.progress)
        folder = call.folder()
        return {
            "restored": _png(folder, "restored", result.restored),
            "naive": _png(folder, "naive", result.naive),
            "metrics": metrics_rows(result),
        }

    connect(
        button.click,
        restore_tokens,
        form,
        outputs,
        api_name="restore_tokens",
        cancel=cancel,
        gpu_duration=offered("compression").gpu_seconds,
    )


def build_decompress(studio: StudioInterface) -> None:
    form = Form(DecompressRequest)
    with gr.Row():
        with gr.Column():
            form.add("file", gr.File(label=".zsc file"))
            with gr.Row():
                button = gr.Button("Decode", variant="primary")
                cancel = gr.Button("Cancel", variant="stop")
        with gr.Column():
            decoded = gr.Image(label="Decoded", type="filepath", interactive=False)
            metrics = metrics_table("File")

    def decompress(values: dict[str, Any], call: Call) -> dict[str, Any]:
        """Decode a .zsc file made by the compress endpoint."""
        result = studio.engine("compression").run(DecompressRequest(**values), call.progress)
        return {
            "decoded": _png(call.folder(), "decoded", result.image),
            "metrics": metrics_rows(result),
        }

    outputs = {"decoded": decoded, "metrics": metrics}
    connect(
        button.click,
        decompress,
        form,
        outputs,
        api_name="decompress",
        cancel=cancel,
        gpu_duration=offered("compression").gpu_seconds,
    )


def build(studio: StudioInterface) -> None:
    intro(INTRO)
    notice = gr.Markdown(visible=False)
    cpu_notice(studio, notice, None, CPU_SLOW, "compression")
    with gr.Tabs():
        with gr.Tab("Compress"):
            zsc_file, image = build_compress(studio)
            with gr.Accordion("Lost tokens: restore them with the masked transformer", open=True):
                build_restore(studio, zsc_file, image)
        with gr.Tab("Decode a .zsc"):
            build_decompress(studio)
