"""Box-guided attention control: processors that wrap diffusers' own on the spatial layers of
AnimateDiff's UNet and steer them with per-call data.

Every spatial attention layer (`attn1` self-attention, `attn2` cross-attention; the motion
modules' temporal attention, whose names carry `motion_modules`, only when a temporal control
acts) gets a wrapper. A
wrapper holds only its layer's name and the processor it replaced; what a call needs (masks,
step, the subject's reference features) arrives as `cross_attention_kwargs={"video_control":
VideoControl}`, which the UNet hands to its spatial transformers only. Without it, or outside
a control's step range, the wrapper calls the replaced processor unchanged. The attention
output is always computed by the replaced processor (`AttnProcessor2_0`,
`IPAdapterAttnProcessor2_0`); the controls only change its inputs:

1. masked reference attention (attn1): the subject's own attn1 inputs, recorded from a
   one-frame pass of the noised subject latent at the same timestep, are appended to every
   frame's keys and values (conditional half). Their logits get log(strength), plus
   log(lambda_M) for queries outside the frame's box: computed as two delegated calls (key
   bias without and with log(lambda_M)), each on only the queries of its side of the box
   (`split.QuerySplit`; cells the box's edge cuts are in both and blended by the mask), which
   equals a per-query bias for hard masks without materialising a (queries x keys) mask.
2. masked IP-Adapter (attn2): the image branch times 1 - s * (1 - box mask), through the
   replaced processor's own `ip_adapter_masks`, given at the layer's exact resolution.
3. subject tokens (attn2): the subject's text logits (the phrase, and end-of-text tokens when
   the preset says) get a bias inside the box and another outside (conditional half), each
   in its own step window, as an additive attention mask.
4. Peekaboo's partition (attn1, attn2) and a temporal fg/bg bias (the motion modules, only
   when a control uses it: `TemporalAttention`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .split import QuerySplit
from .trajectory import BoxMasks

MOTION = "motion_modules"


FOREGROUND = 0.5  # a cell counts as inside the box for the hard fg/bg partitions from here
SEPARATE = -10000.0  # Peekaboo's "masked out" logit


@dataclass(frozen=True)
class ControlSettings:
    """Strength and [first, last) step range of each control; strength 0 switches it off.

    reference: logits log(strength) on the subject's keys, plus log(lambda) outside the box:
    `reference_lambda_early` before step `reference_soften_step`, `reference_lambda` after
    (lambda 0: a hard mask, the reference only inside).
    token: logit biases on the subject's tokens (`VideoControl.token_indices`), inside the box
    `token_inside` (shape "flat"; "area": times 1 - box area, Direct-a-Video; "gaussian":
    log(1 + token_inside * G), G a Gaussian over the box, TrailBlazer) during `token_steps`,
    outside `token_outside` during `token_outside_steps`.
    partition: Peekaboo's fg/bg separation in spatial self- and cross-attention (`SEPARATE`
    between a box query and a background key, and between box queries and non-subject tokens).
    temporal: in the motion modules' attention, `temporal_bias` between a frame where a
    position is inside the box and one where it is not (0: the motion modules untouched)."""

    reference_strength: float = 0.0
    reference_lambda: float = 0.75
    reference_lambda_early: float = 0.75
    reference_soften_step: int = 0
    reference_steps: tuple[int, int] = (0, 0)
    ip_mask_strength: float = 0.0
    ip_mask_steps: tuple[int, int] = (0, 0)
    token_inside: float = 0.0
    token_inside_shape: str = "flat"
    token_steps: tuple[int, int] = (0, 0)
    token_outside: float = 0.0
    token_outside_steps: tuple[int, int] = (0, 0)
    partition: bool = False
    partition_steps: tuple[int, int] = (0, 0)
    temporal_bias: float = 0.0
    temporal_steps: tuple[int, int] = (0, 0)

    def strength(self, control: str) -> float:
        """How much a control does (0: nothing), whatever its step range."""
        return abs(
            {
                "reference": self.reference_strength,
                "ip_mask": self.ip_mask_strength,
                "token": self.token_inside,
                "token_outside": self.token_outside,
                "partition": float(self.partition),
                "temporal": self.temporal_bias,
            }[control]
        )

    def acts(self, control: str) -> bool:
        first, last = getattr(self, f"{control}_steps")
        return self.strength(control) > 0 and last > first

    def lambda_at(self, step: int) -> float:
        early = step < self.reference_soften_step
        return self.reference_lambda_early if early else self.reference_lambda


CONTROLS = ("reference", "ip_mask", "token", "token_outside", "partition", "temporal")
NEEDS_TOKENS = ("token", "token_outside")


@dataclass
class AttentionProbe:
    """Measures, at the conditional half of chosen steps, where attention goes: per layer,
    the share of the subject tokens' attention mass that falls inside the box, and the same
    for the reference's keys. Computed beside the delegated call, for tests and diagnostics."""

    steps: tuple[int, ...] = (0,)
    token_inside: dict[str, float] = field(default_factory=dict)
    reference_inside: dict[str, float] = field(default_factory=dict)

    def record(self, table: dict[str, float], layer: str, probs: torch.Tensor, mask) -> None:
        """probs: (frames, queries) attention mass per query; mask: (frames, queries)."""
        total = probs.sum()
        if total > 0:
            table[layer] = float((probs * mask).sum() / total)


@dataclass
class VideoControl:
    """Everything one generation's processors need, passed through `cross_attention_kwargs`
    (and held by the temporal wrappers, which AnimateDiff calls without them)."""

    settings: ControlSettings
    frames: int
    masks: BoxMasks | None = None
    token_indices: tuple[int, ...] = ()
    reference_keep: dict[int, torch.Tensor] = field(default_factory=dict)  # tokens -> bool
    step: int = 0
    recording: bool = False  # the reference pass: store attn1 inputs, change nothing
    reference: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> (1, r, C)
    reference_layers: int = 0  # the reference pass stops once this many have recorded (0: never)
    probe: AttentionProbe | None = None
    splits: dict[int, QuerySplit] = field(default_factory=dict)  # tokens -> its query split

    def active(self, control: str) -> bool:
        if not self.settings.acts(control):
            return False
        if control != "reference" and self.masks is None:
            return False
        if control in NEEDS_TOKENS and not self.token_indices:
            return False
        first, last = getattr(self.settings, f"{control}_steps")
        return first <= self.step < last

    def used(self) -> list[str]:
        """The controls that act at some step of this generation."""
        return [
            name
            for name in CONTROLS
            if self.settings.acts(name)
            and (name == "reference" or self.masks is not None)
            and (name not in NEEDS_TOKENS or self.token_indices)
        ]

    def query_split(self, tokens: int) -> QuerySplit:
        """The conditional queries of the grid with `tokens` positions, split by the box
        (the masks are fixed for a generation: split once)."""
        split = self.splits.get(tokens)
        if split is None:
            split = self.splits[tokens] = QuerySplit.of(self.masks.conditional(tokens))
        return split

    def probing(self) -> bool:
        return self.probe is not None and self.step in self.probe.steps and not self.recording


class ReferenceRecorded(Exception):
    """The reference pass's last self-attention layer has recorded its input: nothing the pass
    computes after it is used, so it stops there (`sampler._reference_pass` catches this)."""


class SpatialSelfAttention:
    """attn1 of a spatial transformer: masked reference attention, or Peekaboo's partition."""

    def __init__(self, layer: str, inner):
        self.layer = layer
        self.inner = inner

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        video_control: VideoControl | None = None,
    ) -> torch.Tensor:
        control = video_control

        def plain(states, context=None, mask=attention_mask):
            return self.inner(attn, states, context, mask, temb)

        if control is None or encoder_hidden_states is not None:
            return plain(hidden_states, encoder_hidden_states)
        tokens = hidden_states.shape[1]
        if control.recording:
            keep = control.reference_keep.get(tokens)
            control.reference[self.layer] = (
                hidden_states if keep is None else hidden_states[:, keep]
            )
            if len(control.reference) == control.reference_layers:
                raise ReferenceRecorded
            return plain(hidden_states)
        if control.active("partition"):
            fg = control.masks.flat(tokens).ge(FOREGROUND).to(hidden_states.dtype)
            return _partitioned(plain, hidden_states, fg, fg, SEPARATE)
        reference = control.reference.get(self.layer)
        if reference is None or not control.active("reference"):
            return plain(hidden_states)
        frames = control.frames
        uncond, cond = hidden_states[:-frames], hidden_states[-frames:]
        context = torch.cat([cond, reference.expand(frames, -1, -1)], dim=1)
        settings = control.settings
        log_weight = math.log(settings.reference_strength)
        inside_bias = _key_bias(frames, tokens, reference.shape[1], log_weight, cond)
        lam = settings.lambda_at(control.step)
        if control.masks is None or lam >= 1:  # no boxes or no mask: the reference everywhere
            out, outside_bias = plain(cond, context, inside_bias), inside_bias
        else:
            if lam <= 0:  # a hard mask: outside the box the frame attends to itself only
                outside_bias = None

                def outside(queries):
                    return plain(queries, cond, None)
            else:
                log_outside = log_weight + math.log(lam)
                outside_bias = _key_bias(frames, tokens, reference.shape[1], log_outside, cond)

                def outside(queries):
                    return plain(queries, context, outside_bias)

            out = control.query_split(tokens).combine(
                cond, lambda queries: plain(queries, context, inside_bias), outside
            )
        if control.probing() and control.masks is not None:
            mask = control.masks.conditional(tokens).to(cond.dtype)
            self._probe(attn, cond, context, mask, inside_bias, outside_bias, lam, control)
        return torch.cat([plain(uncond), out]) if uncond.shape[0] else out

    def _probe(self, attn, cond, context, mask, inside_bias, outside_bias, lam, control):
        """Attention mass on the reference keys per query (head mean), inside vs outside."""
        tokens = cond.shape[1]
        logits = _logits(attn, cond, context)
        on_reference = []
        for bias in (inside_bias, outside_bias):
            biased = logits if bias is None else logits + bias[:, None]
            probs = biased.softmax(-1).mean(1)
            on_reference.append(probs[..., tokens:].sum(-1))
        outside_mass = on_reference[1] if lam > 0 else torch.zeros_like(on_reference[1])
        mass = mask * on_reference[0] + (1 - mask) * outside_mass
        control.probe.record(control.probe.reference_inside, self.layer, mass, mask)


class SpatialCrossAttention:
    """attn2 of a spatial transformer: masked IP-Adapter and subject-token control."""

    def __init__(self, layer: str, inner):
        self.layer = layer
        self.inner = inner
        self.has_ip = hasattr(inner, "to_k_ip")

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states=None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        video_control: VideoControl | None = None,
    ) -> torch.Tensor:
        control = video_control
        extra = {}
        if control is None or control.recording:
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        tokens = hidden_states.shape[1]
        if self.has_ip and control.active("ip_mask"):
            keep = 1 - control.settings.ip_mask_strength * (1 - control.masks.grid(tokens))
            extra["ip_adapter_masks"] = [keep[:, None].to(hidden_states.dtype)]
        text = encoder_hidden_states[0] if self.has_ip else encoder_hidden_states
        if attention_mask is None:
            attention_mask = token_bias(hidden_states, text.shape[1], control)
        if control.probing() and control.masks is not None and control.token_indices:
            self._probe(attn, hidden_states, text, attention_mask, control)
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **extra)

    def _probe(self, attn, hidden_states, text, bias, control):
        frames = control.frames
        cond, cond_text = hidden_states[-frames:], text[-frames:]
        if attn.norm_cross:
            cond_text = attn.norm_encoder_hidden_states(cond_text)
        logits = _logits(attn, cond, cond_text)
        if bias is not None:
            logits = logits + bias[-frames:, None]
        index = list(control.token_indices)
        mass = logits.softmax(-1).mean(1)[..., index].sum(-1)
        mask = control.masks.conditional(cond.shape[1]).to(mass.dtype)
        control.probe.record(control.probe.token_inside, self.layer, mass, mask)


def token_bias(hidden_states, text_tokens: int, control: VideoControl) -> torch.Tensor | None:
    """(batch, queries, text tokens) additive logits on the subject's tokens of the
    conditional half, from the controls active at this step; None when none is.

    With mask m of a query (partial cells partial): m * inside + (1 - m) * outside, inside
    and outside from their own step windows; Peekaboo's partition on top (hard fg/bg)."""
    inside_on, outside_on = control.active("token"), control.active("token_outside")
    partition = control.active("partition") and bool(control.token_indices)
    if not (inside_on or outside_on or partition):
        return None
    batch, tokens = hidden_states.shape[:2]
    frames, settings = control.frames, control.settings
    mask = control.masks.conditional(tokens).to(torch.float32)  # (frames, queries)
    index = torch.tensor(control.token_indices, device=hidden_states.device)
    signed = torch.zeros_like(mask)
    if inside_on:
        signed = signed + mask * _inside_logits(control, tokens, mask)
    if outside_on:
        signed = signed + (1 - mask) * settings.token_outside
    bias = hidden_states.new_zeros(batch, tokens, text_tokens)
    cond = bias[-frames:]
    cond[:, :, index] = signed[..., None].to(bias.dtype).expand(-1, -1, len(index))
    if partition:
        fg = mask.ge(FOREGROUND)[..., None]
        subject = torch.zeros(text_tokens, dtype=torch.bool, device=bias.device)
        subject[index] = True
        others = ~subject
        others[0] = False  # the start token stays visible to every query
        cond += SEPARATE * ((fg & others) | (~fg & subject)).to(bias.dtype)
    return bias


def _inside_logits(control: VideoControl, tokens: int, mask: torch.Tensor) -> torch.Tensor:
    """(frames, queries): the inside boost of each query, by the shape of the setting."""
    settings, masks = control.settings, control.masks
    shape = settings.token_inside_shape
    if shape == "flat":
        return torch.full_like(mask, settings.token_inside)
    boxes = torch.as_tensor(masks.boxes, dtype=torch.float32, device=mask.device)
    if shape == "area":
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return (settings.token_inside * (1 - area))[:, None].expand_as(mask)
    if shape == "gaussian":
        return torch.log1p(settings.token_inside * box_gaussian(boxes, masks.shape(tokens)))
    raise ValueError(f"unknown token shape {shape!r}")


def box_gaussian(boxes: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(frames, h * w): a Gaussian at each box's centre, sigma a quarter of its width and
    height (so it falls to e^-2 at the box's edge), 1 at the centre; ours (TrailBlazer names
    a Gaussian boost, not these widths)."""
    h, w = grid
    ys = (torch.arange(h, device=boxes.device) + 0.5) / h
    xs = (torch.arange(w, device=boxes.device) + 0.5) / w
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    sx, sy = (boxes[:, 2] - boxes[:, 0]) / 4, (boxes[:, 3] - boxes[:, 1]) / 4
    dx = (xs[None] - cx[:, None]) / sx[:, None]
    dy = (ys[None] - cy[:, None]) / sy[:, None]
    return torch.exp(-(dy[:, :, None] ** 2 + dx[:, None, :] ** 2) / 2).flatten(1)


def _partitioned(plain, states, query_fg, key_fg, bias: float) -> torch.Tensor:
    """Attention where a foreground query sees background keys at `bias` and a background
    query foreground keys at `bias`: two delegated calls with a per-key bias, blended by the
    query's side (exact for hard masks, no (queries x keys) mask materialised).
    query_fg, key_fg: (batch, queries), (batch, keys) of 0/1."""
    to_fg = (bias * (1 - key_fg))[:, None]  # (batch, 1, keys)
    to_bg = (bias * key_fg)[:, None]
    side = query_fg[..., None]
    return side * plain(states, None, to_fg) + (1 - side) * plain(states, None, to_bg)


class TemporalAttention:
    """Attention of a motion module (queries: the frames at one position): a position inside
    the box at one frame and outside at another attend to each other at `temporal_bias`
    (Peekaboo's fg/bg separation, TrailBlazer's weakening). AnimateDiff calls these without
    `cross_attention_kwargs`, so the wrapper holds the generation's control itself."""

    def __init__(self, layer: str, inner, control: VideoControl):
        self.layer = layer
        self.inner = inner
        self.control = control

    def __call__(
        self,
        attn,
        hidden_states,
        encoder_hidden_states=None,
        attention_mask=None,
        temb=None,
        **kwargs,
    ):
        control = self.control

        def plain(states, context=None, mask=attention_mask):
            return self.inner(attn, states, context, mask, temb)

        rows, frames = hidden_states.shape[:2]
        if control.recording or frames != control.frames or not control.active("temporal"):
            return plain(hidden_states, encoder_hidden_states)
        halves = 2 if control.masks.cfg else 1
        masks = control.masks.grid(rows // halves)  # (halves * frames, h, w)
        # rows of the motion module: (batch, y, x) with the frames inside, see
        # AnimateDiffTransformer3D: batch * h * w sequences of `frames` tokens
        fg = masks.reshape(halves, frames, -1).permute(0, 2, 1).reshape(rows, frames)
        fg = fg.ge(FOREGROUND).to(hidden_states.dtype)
        return _partitioned(plain, hidden_states, fg, fg, control.settings.temporal_bias)


def _key_bias(frames: int, own: int, reference: int, log_reference: float, like: torch.Tensor):
    """(frames, 1, own + reference) additive mask: 0 on the frame's own keys, `log_reference`
    on the reference's; broadcast over queries by the processor. None when it is all 0 (the
    processor may then use its fastest kernel)."""
    if log_reference == 0:
        return None
    bias = like.new_zeros(frames, 1, own + reference)
    bias[..., own:] = log_reference
    return bias


def _logits(attn, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """(batch, heads, queries, keys) scaled dot products, as the delegated processor forms them."""
    batch = queries.shape[0]
    q = attn.to_q(queries).view(batch, -1, attn.heads, attn.inner_dim // attn.heads)
    k = attn.to_k(keys).view(batch, -1, attn.heads, attn.inner_dim // attn.heads)
    return torch.einsum("bqhd,bkhd->bhqk", q, k) * attn.scale


def self_attention_layers(unet) -> int:
    """How many spatial self-attention layers are wrapped (each records in the reference pass)."""
    return sum(isinstance(p, SpatialSelfAttention) for p in unet.attn_processors.values())


def is_spatial(name: str) -> bool:
    return MOTION not in name and name.endswith((".attn1.processor", ".attn2.processor"))


@contextmanager
def controlled_attention(unet, temporal: VideoControl | None = None) -> Iterator[list[str]]:
    """Wrap every spatial attn1/attn2 processor for the duration of the block; the motion
    modules keep theirs unless `temporal` (a control whose temporal bias acts at some step)
    is given. The originals, IP-Adapter weights included, are restored after. Yields the
    wrapped layer names."""
    original = dict(unet.attn_processors)
    processors, wrapped = {}, []
    for name, processor in original.items():
        layer = name.removesuffix(".processor")
        if is_spatial(name):
            kind = SpatialSelfAttention if layer.endswith(".attn1") else SpatialCrossAttention
            processors[name] = kind(layer, processor)
        elif temporal is not None and "temporal" in temporal.used() and MOTION in name:
            processors[name] = TemporalAttention(layer, processor, temporal)
        else:
            processors[name] = processor
            continue
        wrapped.append(layer)
    unet.set_attn_processor(processors)
    try:
        yield wrapped
    finally:
        unet.set_attn_processor(original)
