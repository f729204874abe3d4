"""The Image compression tab: VQGAN-token files under 0.05 bpp, JPEG/WebP beside them, decoding
uploaded .zsc files, and restoring lost tokens."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from engines.compression import CODEBOOK_SIZES, CompressRequest, DecompressRequest, RestoreRequest
from engines.compression.images import png_bytes
from engines.studio import Studio

from .common import GPU_EVENT, engine_handler, gradio_progress, metrics_rows, recipe_file

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "compression"
EXAMPLES = ("astronaut.png", "coffee.png", "chelsea.png")
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


def _folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="zss-compression-"))


def _png(folder: Path, name: str, image) -> str:
    path = folder / f"{name}.png"
    path.write_bytes(png_bytes(image))
    return str(path)


def _rate_rows(rates: list[dict]) -> list[list]:
    def rounded(value, digits):
        return None if value is None else round(float(value), digits)

    return [
        [
            row["codec"],
            row["setting"],
            row["bytes"],
            rounded(row["bpp"], 4),
            rounded(row["psnr_db"], 2),
            rounded(row["ms_ssim"], 4),
        ]
        for row in rates
    ]


def build(studio: Studio) -> None:
    gr.Markdown(INTRO)
    with gr.Tabs():
        with gr.Tab("Compress"):
            with gr.Row():
                with gr.Column():
                    image = gr.Image(label="Photo (up to 2048 px a side)", type="filepath")
                    codebook = gr.Dropdown(
                        choices=list(CODEBOOK_SIZES),
                        value=256,
                        label="Codebook size K (log2 K bits per token before entropy coding)",
                    )
                    coder = gr.Radio(
                        choices=[
                            ("Masked-transformer range coder (smaller)", "model"),
                            ("Fixed length, log2 K bits a token (decodes anywhere)", "fixed"),
                        ],
                        value="model",
                        label="Entropy coder",
                    )
                    compress_button = gr.Button("Compress", variant="primary")
                    gr.Examples(
                        [[str(ASSETS / name), 256, "model"] for name in EXAMPLES],
                        inputs=[image, codebook, coder],
                    )
                with gr.Column():
                    decoded = gr.Image(
                        label="Decoded from the .zsc file", type="filepath", interactive=False
                    )
                    zsc_file = gr.File(label=".zsc file (decode it in the next tab)")
            rates = gr.Dataframe(
                headers=RATE_HEADERS, label="Rate and quality, measured on this image"
            )
            comparison = gr.Gallery(
                label="Side by side: ours and the classical codecs (decoded, original size)",
                columns=4,
                height="auto",
            )
            with gr.Row():
                metrics = gr.Dataframe(headers=["metric", "value"], label="Measured")
                recipe = gr.File(label="Recipe (zsstudio run recipe.json)")
            with gr.Accordion("Lost tokens: restore them with the masked transformer", open=True):
                gr.Markdown(
                    "Drop a fraction of the file's tokens (as if lost in transmission), then "
                    "fill them MaskGIT-style with the transformer, or naively with the nearest "
                    "received token. PSNR is against the photo above."
                )
                with gr.Row():
                    loss = gr.Slider(0.0, 0.9, value=0.2, step=0.05, label="Fraction lost")
                    seed = gr.Number(value=0, precision=0, label="Seed (which tokens)")
                    restore_button = gr.Button("Lose and restore")
                with gr.Row():
                    restored = gr.Image(label="Restored (transformer)", interactive=False)
                    naive = gr.Image(label="Naive fill (nearest token)", interactive=False)
                restore_metrics = gr.Dataframe(headers=["metric", "value"], label="Measured")

        with gr.Tab("Decode a .zsc"):
            with gr.Row():
                with gr.Column():
                    upload = gr.File(label=".zsc file")
                    decode_button = gr.Button("Decode", variant="primary")
                with gr.Column():
                    decoded_upload = gr.Image(label="Decoded", type="filepath", interactive=False)
                    decode_metrics = gr.Dataframe(headers=["metric", "value"], label="File")

    # gradio finds the progress tracker by its default value; one per handler
    compress_progress = gr.Progress(track_tqdm=True)
    restore_progress = gr.Progress()
    decompress_progress = gr.Progress()

    @engine_handler
    def compress(image_path, k, coder_name, progress=compress_progress):
        request = CompressRequest(image=image_path, codebook=k, coder=coder_name)
        result = studio.engine("compression").run(request, gradio_progress(progress))
        folder = _folder()
        stem = Path(image_path).stem if image_path else "image"
        zsc_path = folder / f"{stem}.zsc"
        zsc_path.write_bytes(result.zsc)
        ours = _png(folder, "ours", result.decoded)
        gallery = [(_png(folder, "original", result.original), "original")]
        gallery.append((ours, f"ours: {len(result.zsc)} bytes"))
        for base in result.baselines:
            name = f"{base.codec}-{base.mode}".replace(" ", "-")
            gallery.append((_png(folder, name, base.decoded), f"{base.label}: {base.nbytes} B"))
        return (
            ours,
            str(zsc_path),
            _rate_rows(result.rates),
            gallery,
            metrics_rows(result.metrics),
            recipe_file(result),
        )

    @engine_handler
    def restore_tokens(zsc_path, fraction, seed_value, image_path, progress=restore_progress):
        request = RestoreRequest(
            file=zsc_path, loss=float(fraction), seed=int(seed_value or 0), original=image_path
        )
        result = studio.engine("compression").run(request, gradio_progress(progress))
        folder = _folder()
        return (
            _png(folder, "restored", result.restored),
            _png(folder, "naive", result.naive),
            metrics_rows(result.metrics),
        )

    @engine_handler
    def decompress(zsc_path, progress=decompress_progress):
        result = studio.engine("compression").run(
            DecompressRequest(file=zsc_path), gradio_progress(progress)
        )
        return _png(_folder(), "decoded", result.image), metrics_rows(result.metrics)

    compress_button.click(
        compress,
        inputs=[image, codebook, coder],
        outputs=[decoded, zsc_file, rates, comparison, metrics, recipe],
        api_name="compress",
        **GPU_EVENT,
    )
    restore_button.click(
        restore_tokens,
        inputs=[zsc_file, loss, seed, image],
        outputs=[restored, naive, restore_metrics],
        api_name="restore_tokens",
        **GPU_EVENT,
    )
    decode_button.click(
        decompress,
        inputs=[upload],
        outputs=[decoded_upload, decode_metrics],
        api_name="decompress",
        **GPU_EVENT,
    )
