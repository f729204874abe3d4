"""The adaptation loop: a frozen source generator, a trainable copy fed the same W (and the same
noise), and CLIP losses (NADA or SVL). `Adaptation.run()` is a generator of progress updates;
stopping it early leaves `Adaptation.target` as a valid, partly adapted generator.

A step may run its batch in micro-batches (`micro_batch.py`). SVL's losses compare the samples
of a batch, so they cannot be summed over micro-batches; instead the step first computes every
sample's CLIP features without a graph, takes the loss's gradient with respect to those
features, then re-runs each micro-batch with a graph and passes that gradient back through it:
the parameters get the whole batch's gradient (to float rounding), for one more forward pass."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from ..clip_guide import ClipGuide
from ..long_runs import RunUpdate
from . import nada, svl
from .micro_batch import micro_batches
from .requests import AdaptRequest
from .stylegan2 import Generator, truncate

PreviewFn = Callable[[Generator], Any]

# Algorithm constants (not user settings)
BETA2 = 0.99  # Adam's second-moment decay; betas (0, 0.99) as both papers
STAGE1_LR = 0.01  # SVL stage 1: Adam on the variation vectors (our choice, see svl.py)
LAYER_PROBE_STEPS = 1  # NADA layer selection: W+ steps before picking the layers


class Adaptation:
    """One run of NADA or SVL on a copy of `source`."""

    def __init__(
        self,
        source: Generator,
        mean_w: torch.Tensor,
        clips: list[ClipGuide],
        request: AdaptRequest,
        preview: PreviewFn | None = None,
        micro_batch: int | None = None,
    ):
        request.validate()  # fills in the method's batch when none was given
        self.source = source.requires_grad_(False).eval()
        self.target = copy.deepcopy(self.source)
        self.target.requires_grad_(False)
        for layer in self.target.synthesis_layers():
            layer.requires_grad_(True)
        self.parameters = [p for p in self.target.parameters() if p.requires_grad]
        self.mean_w = mean_w
        self.clips = clips
        self.request = request
        self.micro_batch = min(micro_batch or request.batch, request.batch)
        self.preview = preview
        self.device = source.input.input.device
        self.history: list[dict[str, float]] = []
        self.iterations_done = 0
        self.variations: list[svl.Variations] = []
        self.layer_counts: list[int] = []
        self.step_seconds: list[float] = []
        self.timings: dict[str, float] = {}
        self.directions: list[torch.Tensor] = []  # per CLIP model: NADA (D,), SVL (K+1, D)
        self.fisher: list[torch.Tensor] | None = None
        self.anchors: list[torch.Tensor] = []
        self._rng = torch.Generator().manual_seed(request.seed)

    # -- setup ---------------------------------------------------------------------------------

    def _text_setup(self) -> Iterator[RunUpdate]:
        s = self.request
        if s.method == "nada":
            self.directions = [nada.text_direction(c, s.source, s.target) for c in self.clips]
            return
        # setup is step 0 of the adaptation's iterations
        yield RunUpdate("variations", 0, s.iterations, "Stage 1: semantic variations")
        self.directions = []
        for index, clip in enumerate(self.clips):
            target = clip.text_feature(s.target)
            found = svl.semantic_variations(
                target, s.variations, s.lambda_div, s.stage1_iterations, STAGE1_LR, s.seed + index
            )
            self.variations.append(found)
            self.directions.append(
                svl.text_directions(found.vectors, clip.text_feature(s.source), target)
            )
        yield RunUpdate(
            "variations",
            0,
            s.iterations,
            "Stage 1 done",
            {
                "variation_target_cos": self.variations[0].target_cosine,
                "variation_pairwise_abs_cos": self.variations[0].pairwise_abs_cosine,
            },
        )

    def _fisher_setup(self) -> None:
        """EWC anchors and Fisher weights, once, from each sample's source-domain CLIP score
        (summed over the CLIP models) on one batch. Each sample gets a forward pass of its own:
        its gradient is the same as through the batch's graph, but a backward through that
        graph does the whole batch's work for one sample's gradient."""
        if self.request.method != "svl" or self.request.lambda_ewc == 0:
            return
        self.anchors = [p.detach().clone() for p in self.parameters]
        w, noise = self._sample_batch()
        total = [torch.zeros_like(p) for p in self.parameters]
        for part in micro_batches(w.shape[0], 1):
            images = self.target(w[part], [n[part] for n in noise])
            scores = sum(
                c.image_features(images) @ F.normalize(c.text_feature(self.request.source), dim=0)
                for c in self.clips
            )
            squares = svl.squared_score_gradients(scores, self.parameters)
            for into, square in zip(total, squares, strict=True):
                into.add_(square)
        self.fisher = [t / w.shape[0] for t in total]

    # -- the loop ------------------------------------------------------------------------------

    def _sample_batch(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        s = self.request
        z = torch.randn(s.batch, self.source.config.style_dim, generator=self._rng)
        noise = self.source.make_noise(s.batch, self._rng)
        with torch.no_grad():
            w = truncate(self.source.mapping(z.to(self.device)), self.mean_w, s.train_truncation)
        return w, noise

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Each CLIP model's features of `images`."""
        return [clip.image_features(images) for clip in self.clips]

    def _losses(
        self, per_clip_source: list[torch.Tensor], per_clip_target: list[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The method's loss terms from each CLIP model's features of the batch."""
        s = self.request
        terms: dict[str, torch.Tensor] = {}

        def add(name: str, value: torch.Tensor) -> None:
            terms[name] = terms[name] + value if name in terms else value

        for source_features, target_features, direction in zip(
            per_clip_source, per_clip_target, self.directions, strict=True
        ):
            if s.method == "nada":
                add(
                    "directional",
                    nada.directional_loss(source_features, target_features, direction),
                )
                continue
            image_dirs = nada.image_directions(source_features, target_features)
            mean_term, cov_term = svl.directional_moment_loss(image_dirs, direction, s.lambda_cov)
            add("moment_mean", mean_term)
            add("moment_cov", cov_term)
            if s.lambda_rel:
                relation = svl.relation_consistency(source_features, target_features)
                add("relation", s.lambda_rel * relation)
        if s.method == "svl":
            terms["directional_moment"] = terms["moment_mean"] + terms["moment_cov"]
            if self.fisher is not None:
                penalty = svl.ewc_penalty(self.parameters, self.anchors, self.fisher)
                terms["ewc"] = s.lambda_ewc * penalty
        parts = (
            ("directional",) if s.method == "nada" else ("directional_moment", "ewc", "relation")
        )
        terms["total"] = sum(terms[name] for name in parts if name in terms)
        return terms

    def _select_layers(self, w: torch.Tensor, noise: list[torch.Tensor]) -> None:
        s = self.request
        if s.method != "nada" or s.layer_k <= 0:
            return
        chosen = nada.select_layers(
            self.target,
            w,
            self.clips,
            s.target,
            s.layer_k,
            LAYER_PROBE_STEPS,
            noise=noise,
            micro_batch=self.micro_batch,
        )
        self.target.requires_grad_(False)
        for layer in self.target.layers_for_latents(chosen):
            layer.requires_grad_(True)
        self.layer_counts.append(len(chosen))

    def step(self, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        w, noise = self._sample_batch()
        parts = micro_batches(w.shape[0], self.micro_batch)
        with torch.no_grad():
            source_features = self._batch_features(self.source, w, noise, parts)
        self._select_layers(w, noise)
        optimizer.zero_grad(set_to_none=True)
        if len(parts) == 1:
            terms = self._losses(source_features, self._features(self.target(w, noise)))
            terms["total"].backward()
        else:
            terms = self._accumulated_backward(w, noise, parts, source_features)
        optimizer.step()
        return {name: float(value.detach()) for name, value in terms.items()}

    def _batch_features(self, generator, w, noise, parts: list[slice]) -> list[torch.Tensor]:
        """Each CLIP model's features of the whole batch, a micro-batch at a time."""
        chunks = [self._features(generator(w[p], [n[p] for n in noise])) for p in parts]
        return [torch.cat(per_clip) for per_clip in zip(*chunks, strict=True)]

    def _accumulated_backward(
        self, w, noise, parts: list[slice], source_features: list[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The whole batch's gradient in micro-batches: the loss's gradient with respect to the
        target features (and, for EWC, the parameters directly), then each micro-batch's
        features backward with its rows of that gradient."""
        with torch.no_grad():
            features = self._batch_features(self.target, w, noise, parts)
        leaves = [f.requires_grad_(True) for f in features]
        terms = self._losses(source_features, leaves)
        terms["total"].backward()
        for part in parts:
            again = self._features(self.target(w[part], [n[part] for n in noise]))
            torch.autograd.backward(again, [leaf.grad[part] for leaf in leaves])
        return terms

    def run(self, stop: threading.Event | None = None) -> Iterator[RunUpdate]:
        """Set up, then train, yielding an update (with a preview) every `preview_every`
        iterations and at the end. Setting `stop` ends the loop after the current iteration."""
        s = self.request
        started = time.perf_counter()
        yield from self._text_setup()
        if stop is not None and stop.is_set():
            return
        if s.method == "svl":
            yield RunUpdate("fisher", 0, s.iterations, "Fisher information for EWC")
        self._fisher_setup()
        self.timings["setup_seconds"] = time.perf_counter() - started
        optimizer = torch.optim.Adam(self.parameters, lr=s.lr, betas=(0.0, BETA2))
        first = self._preview()
        yield RunUpdate("adapt", 0, s.iterations, "Adapting", preview=first)
        loop_started = time.perf_counter()
        for iteration in range(1, s.iterations + 1):
            if stop is not None and stop.is_set():
                break
            step_started = time.perf_counter()
            losses = self.step(optimizer)  # reading the losses waits for the device
            self.step_seconds.append(time.perf_counter() - step_started)
            self.iterations_done = iteration
            self.history.append({"iteration": iteration, **losses})
            self.timings["adapt_seconds"] = time.perf_counter() - loop_started
            if iteration % s.preview_every == 0 or iteration == s.iterations:
                yield RunUpdate(
                    "adapt",
                    iteration,
                    s.iterations,
                    f"Iteration {iteration}/{s.iterations} · loss {losses['total']:.4f}",
                    losses,
                    self._preview(),
                    list(self.history),
                )
        self.target.requires_grad_(False)
        yield RunUpdate(
            "done",
            self.iterations_done,
            s.iterations,
            "Stopped" if self.iterations_done < s.iterations else "Done",
            self.history[-1] if self.history else {},
            history=list(self.history),
        )

    def _preview(self) -> Any:
        if self.preview is None:
            return None
        with torch.no_grad():
            return self.preview(self.target)
