"""Figures published by the papers and their peers, typed in once, each with where it comes
from. Ours are never typed in: they come from runs (`engines.evaluation.<capability>`).

A figure is only here if its source was read: a paper's table and page, or a peer's results
file at a commit. Capabilities whose paper tables could not be read when this was written
have none yet; the report says so rather than quoting numbers from memory."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperFigure:
    capability: str
    method: str  # who reported it: "bmshj2018-hyperprior (CompressAI)", "StyleTTS-ZS", ...
    metric: str  # the report's metric name it sits beside: "psnr_db", "bpp", ...
    value: float
    setting: str  # dataset and operating point: "Kodak (24 images), lowest rate point"
    source: str  # table and page, or file and commit


COMPRESSAI = "InterDigitalInc/CompressAI@{commit}, results/image/kodak/{file}"
_HYPERPRIOR = COMPRESSAI.format(
    commit="128f00397509b9882aaaeea49f43f1714da083b4",
    file="compressai-bmshj2018-hyperprior_mse_cpu.json (first entry of psnr, ms-ssim, bpp)",
)
_JPEG = COMPRESSAI.format(
    commit="3d3c9bbd92989b1cf19e122281161f7aac8ee769",
    file="jpeg.json, Pillow 7.1.2 (first entry of psnr-rgb, ms-ssim-rgb, bpp)",
)
_KODAK_LOW = "Kodak (24 images, 768x512), the lowest rate point published"

FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure(
        "compression",
        "bmshj2018-hyperprior (CompressAI)",
        "bpp",
        0.13129340277777776,
        _KODAK_LOW,
        _HYPERPRIOR,
    ),
    PaperFigure(
        "compression",
        "bmshj2018-hyperprior (CompressAI)",
        "psnr_db",
        27.58153679333392,
        _KODAK_LOW,
        _HYPERPRIOR,
    ),
    PaperFigure(
        "compression",
        "bmshj2018-hyperprior (CompressAI)",
        "ms_ssim",
        0.9173671156167984,
        _KODAK_LOW,
        _HYPERPRIOR,
    ),
    PaperFigure("compression", "JPEG (CompressAI)", "bpp", 0.22115325927734372, _KODAK_LOW, _JPEG),
    PaperFigure(
        "compression", "JPEG (CompressAI)", "psnr_db", 23.779894921045457, _KODAK_LOW, _JPEG
    ),
    PaperFigure(
        "compression", "JPEG (CompressAI)", "ms_ssim", 0.8030709524949392, _KODAK_LOW, _JPEG
    ),
)

MISSING = {
    "compression": "The paper's own Kodak/CLIC table (arXiv:2307.08265) is not typed in yet: "
    "it could not be read offline when this was written. Add its rows to "
    "engines/evaluation/papers.py with the table and page.",
    "layout": "BACON's DrawBench/HRS tables (arXiv:2411.10495) are not typed in yet: they could "
    "not be read offline when this was written. Add them with the table and page; note they "
    "are on HRS/DrawBench, not on our prompt set.",
    "speech": "StyleTTS-ZS's LibriSpeech test-clean table (arXiv:2409.10058) is not typed in "
    "yet: it could not be read offline when this was written. Its SIM uses WavLM-Large + "
    "ECAPA-TDNN, ours wavlm-base-plus-sv: the numbers do not compare directly.",
    "gan": "The SVL paper's tables (ICCV 2023, arXiv:2308.10554) are not typed in yet: they "
    "could not be read offline when this was written. Add them with the table and page.",
    "nerf": "ED-NeRF's tables (Park, Kwon, Ye, ICLR 2024) and its peers' (Instruct-NeRF2NeRF, "
    "Vox-E, PDS) are not typed in yet: they could not be read offline when this was written. "
    "Add them with the table and page; note they are on the papers' captured scenes, not on "
    "our procedural example.",
    "video": "DreamVideo-2's tables (arXiv:2410.13830) and its peers' (Peekaboo, "
    "Direct-a-Video, MotionCtrl) are not typed in yet: they could not be read offline when "
    "this was written. Add them with the table and page; note they are on DreamVideo-2's own "
    "test set, not on our items.",
}


def figures_for(capability: str) -> list[PaperFigure]:
    return [figure for figure in FIGURES if figure.capability == capability]
