"""GanAdaptEngine: text-guided zero-shot StyleGAN2 adaptation (SVL or StyleGAN-NADA), and
sampling from adapted generators."""

from __future__ import annotations

import threading
import time
from typing import Any

import torch

from ..base import Progress, no_progress
from ..clip_guide import ClipGuide
from ..errors import InputError
from ..long_runs import Emit, Job, LongRunEngine
from ..memory import free_bytes
from ..parts import LoadContext, Parts
from ..peak_memory import peak_memory, reset_peak
from . import metrics as gan_metrics
from .adapt import Adaptation
from .catalog import generator_choices
from .checkpoint import build_generator, generator_state, read_checkpoint
from .images import grid, to_pil
from .loading import LoadedGenerator, parts
from .micro_batch import choose_micro_batch
from .nada import text_direction
from .requests import AdaptRequest, SampleRequest
from .results import GanAdaptResult, GanSampleResult
from .stylegan2 import Generator, truncate

TILE = 256  # grid tiles are shown at most this wide


class GanAdaptEngine(LongRunEngine):
    name = "gan"
    tasks = {AdaptRequest: "adapt", SampleRequest: "sample"}

    # -- models ------------------------------------------------------------------------------

    def load(self, context: LoadContext) -> Parts:
        loaded = context.lazy(parts(context.registry, context.engine))
        loaded.get("clip")  # every request needs it; generators load when first chosen
        return loaded

    def generator_choices(self) -> dict[str, str]:
        """Registry generators: component name -> description."""
        return generator_choices(self.manager.registry, self.name)

    def _check_model(self, model: str) -> None:
        choices = self.generator_choices()
        if model not in choices:
            raise InputError(f"Unknown generator {model!r}; choose one of {', '.join(choices)}.")

    # -- adaptation ----------------------------------------------------------------------------

    def adapt(self, request: AdaptRequest, progress: Progress = no_progress) -> GanAdaptResult:
        """Adapt to the end (`start` for a run that can be watched and stopped)."""
        return self.follow(request, progress)

    def prepare(self, request: AdaptRequest) -> Job:
        self._check_model(request.model)
        return lambda parts, emit, stop: self._adapt(parts, request, emit, stop)

    def _adapt(
        self, parts: Parts, request: AdaptRequest, emit: Emit, stop: threading.Event
    ) -> GanAdaptResult:
        chosen: LoadedGenerator = parts.get(request.model)
        source, mean_w = chosen.generator, chosen.mean_w
        clips = [parts.get("clip")] + ([parts.get("clip_b16")] if request.second_clip else [])
        if request.method == "nada" and request.layer_k > source.selectable_latents:
            raise InputError(
                f"layer k is {request.layer_k} but this generator has only "
                f"{source.selectable_latents} selectable layers."
            )
        grid_w, grid_noise = fixed_latents(
            source, mean_w, request.grid_size, request.seed, request.truncation
        )

        def preview(generator: Generator):
            return grid([to_pil(generator(grid_w, grid_noise), TILE)])

        device = source.input.input.device
        request.validate()  # the method's batch, when none was given
        micro = choose_micro_batch(
            request.batch,
            source.config.size,
            free_bytes(device),
            request.micro_batch,
            self.manager.low_memory.on,
            device.type,
        )
        reset_peak(device)
        adaptation = Adaptation(source, mean_w, clips, request, preview, micro)
        for update in adaptation.run(stop):
            emit(update)
        adapted = adaptation.target
        with torch.no_grad():
            before = to_pil(source(grid_w, grid_noise), TILE)
            after = to_pil(adapted(grid_w, grid_noise), TILE)
        measured = self._evaluate(source, adapted, mean_w, clips[0], request, micro)
        measured.update(self._run_figures(adaptation))
        sources = parts.sources(request.model, *(c.name for c in clips))
        return GanAdaptResult(
            recipe=self.recipe(request, sources, request.seed),
            metrics=measured,
            before_after=grid([before, after]),
            history=adaptation.history,
            generator_state={k: v.detach().cpu().clone() for k, v in adapted.state_dict().items()},
            latent_avg=mean_w.detach().cpu().clone(),
            iterations_done=adaptation.iterations_done,
            cancelled=adaptation.iterations_done < request.iterations,
            notes=self._notes(measured),
        )

    @torch.no_grad()
    def _evaluate(
        self,
        source: Generator,
        adapted: Generator,
        mean_w: torch.Tensor,
        clip: ClipGuide,
        request: AdaptRequest,
        chunk: int,
    ) -> dict[str, Any]:
        """CLIP scores and diversity on `eval_samples` fixed samples, before and after, `chunk`
        samples at a time (the training's micro-batch)."""
        w, noise = fixed_latents(
            source, mean_w, request.eval_samples, request.seed + 1, request.truncation
        )
        source_features, adapted_features, adapted_images = [], [], []
        for start in range(0, w.shape[0], chunk):
            part = slice(start, start + chunk)
            chunk_noise = [n[part] for n in noise]
            source_features.append(clip.image_features(source(w[part], chunk_noise)))
            images = adapted(w[part], chunk_noise)
            adapted_features.append(clip.image_features(images))
            adapted_images.append(images.float().cpu())
        src, out = torch.cat(source_features), torch.cat(adapted_features)
        target = clip.text_feature(request.target)
        figures: dict[str, Any] = {
            "clip_target_score_before": gan_metrics.text_score(src, target),
            "clip_target_score_after": gan_metrics.text_score(out, target),
            "clip_direction_alignment": gan_metrics.direction_alignment(
                src, out, text_direction(clip, request.source, request.target)
            ),
            "diversity_clip_before": gan_metrics.mean_pairwise_distance(src),
            "diversity_clip_after": gan_metrics.mean_pairwise_distance(out),
        }
        lpips = gan_metrics.local_lpips(source.input.input.device)
        clusters = min(10, request.eval_samples // 4)
        if lpips is not None and clusters >= 2:
            images = torch.cat(adapted_images).to(source.input.input.device)
            figures["lpips_intra_cluster_after"] = gan_metrics.intra_cluster_distance(
                images, clusters, lpips
            )
        return figures

    @staticmethod
    def _run_figures(adaptation: Adaptation) -> dict[str, Any]:
        seconds = adaptation.timings.get("adapt_seconds", 0.0)
        steps = sorted(adaptation.step_seconds)
        figures: dict[str, Any] = {
            "iterations_done": adaptation.iterations_done,
            "micro_batch": adaptation.micro_batch,
            "setup_seconds": round(adaptation.timings.get("setup_seconds", 0.0), 3),
            "adapt_seconds": round(seconds, 3),
            "iterations_per_second": adaptation.iterations_done / seconds if seconds else 0.0,
        }
        if steps:  # the median step leaves out warm-up and preview rendering
            figures["median_step_seconds"] = steps[len(steps) // 2]
        if adaptation.history:
            figures["final_loss"] = adaptation.history[-1]["total"]
        if adaptation.variations:
            first = adaptation.variations[0]
            figures["variation_target_cos"] = first.target_cosine
            figures["variation_pairwise_abs_cos_before"] = first.initial_pairwise_abs_cosine
            figures["variation_pairwise_abs_cos_after"] = first.pairwise_abs_cosine
        if adaptation.layer_counts:
            figures["layers_trained_per_step"] = adaptation.layer_counts[-1]
        if adaptation.fisher is not None:
            entries = sum(f.numel() for f in adaptation.fisher)
            figures["ewc_fisher_mean"] = sum(float(f.sum()) for f in adaptation.fisher) / entries
        for term in ("directional_moment", "ewc"):  # SVL: EWC beside the moment loss it restrains
            if adaptation.history and term in adaptation.history[-1]:
                figures[f"final_{term}"] = adaptation.history[-1][term]
        figures.update(peak_memory(adaptation.device))
        return figures

    @staticmethod
    def _notes(measured: dict[str, Any]) -> list[str]:
        if "lpips_intra_cluster_after" in measured:
            return []
        return [
            "Intra-cluster LPIPS was skipped: it needs the `lpips` package and its AlexNet "
            "weights already on this machine (nothing is downloaded for it)."
        ]

    # -- sampling ------------------------------------------------------------------------------

    def sample(self, request: SampleRequest, progress: Progress = no_progress) -> GanSampleResult:
        """Images from an adapted generator file, with their CLIP diversity (and target score)."""
        data = read_checkpoint(request.checkpoint)
        generator = build_generator(generator_state(data, "The uploaded file"), "The uploaded file")
        latent_avg = data.get("latent_avg")
        with self.manager.use(self.name) as parts:
            device = parts.context.device.torch_device
            progress(0.1, "Sampling")
            generator = generator.to(device)
            if (
                isinstance(latent_avg, torch.Tensor)
                and latent_avg.numel() == generator.config.style_dim
            ):
                mean_w = latent_avg.reshape(-1).float().to(device)
            else:
                mean_w = generator.mean_latent()
            clip = parts.get("clip")
            started = time.perf_counter()
            w, noise = fixed_latents(
                generator, mean_w, request.count, request.seed, request.truncation
            )
            images, features = [], []
            with torch.no_grad():
                for start in range(0, request.count, 4):
                    part = slice(start, start + 4)
                    batch = generator(w[part], [n[part] for n in noise])
                    images.extend(to_pil(batch))
                    features.append(clip.image_features(batch))
            features = torch.cat(features)
            measured: dict[str, Any] = {
                "samples": request.count,
                "resolution": generator.config.size,
                "diversity_clip": gan_metrics.mean_pairwise_distance(features),
                "seconds": round(time.perf_counter() - started, 3),
            }
            if request.target:
                target = clip.text_feature(request.target)
                measured["clip_target_score"] = gan_metrics.text_score(features, target)
            sources = parts.sources("clip")
        tiles = [image.resize((TILE, TILE)) if image.width > TILE else image for image in images]
        rows = [tiles[i : i + 8] for i in range(0, len(tiles), 8)]
        progress(1.0, "Done")
        return GanSampleResult(
            recipe=self.recipe(request, sources, request.seed),
            metrics=measured,
            images=images,
            grid=grid(rows),
        )


def fixed_latents(
    generator: Generator, mean_w: torch.Tensor, count: int, seed: int, psi: float
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """W (truncated) and noise for `count` samples from a seed: the same images on any device."""
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(count, generator.config.style_dim, generator=rng)
    noise = generator.make_noise(count, rng)
    with torch.no_grad():
        w = truncate(generator.mapping(z.to(mean_w.device)), mean_w, psi)
    return w, noise
