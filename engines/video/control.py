"""Box-guided attention control: processors that wrap diffusers' own on the spatial layers of
AnimateDiff's UNet and steer them with per-call data.

Every spatial attention layer (`attn1` self-attention, `attn2` cross-attention; never the
motion modules' temporal attention, whose names carry `motion_modules`) gets a wrapper. A
wrapper holds only its layer's name and the processor it replaced; what a call needs (masks,
step, the subject's reference features) arrives as `cross_attention_kwargs={"video_control":
VideoControl}`, which the UNet hands to its spatial transformers only. Without it, or outside
a control's step range, the wrapper calls the replaced processor unchanged. The attention
output is always computed by the replaced processor (`AttnProcessor2_0`,
`IPAdapterAttnProcessor2_0`); the controls only change its inputs:

1. masked reference attention (attn1): the subject's own attn1 inputs, recorded from a
   one-frame pass of the noised subject latent at the same timestep, are appended to every
   frame's keys and values (conditional half). Their logits get log(strength), plus
   log(lambda_M) for queries outside the frame's box: computed as two delegated passes (key
   bias without and with log(lambda_M)) blended by the box mask, which equals a per-query
   bias for hard masks without materialising a (queries x keys) mask.
2. masked IP-Adapter (attn2): the image branch times 1 - s * (1 - box mask), through the
   replaced processor's own `ip_adapter_masks`, given at the layer's exact resolution.
3. subject tokens (attn2): the subject phrase's text logits get + log(1 + s) inside the box and
   - log(1 + s) outside (conditional half), as an additive attention mask.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .trajectory import BoxMasks

MOTION = "motion_modules"


@dataclass(frozen=True)
class ControlSettings:
    """Strength and [first, last) step range of each control; strength 0 switches it off."""

    reference_strength: float = 0.0
    reference_lambda: float = 0.75
    reference_steps: tuple[int, int] = (0, 0)
    ip_mask_strength: float = 0.0
    ip_mask_steps: tuple[int, int] = (0, 0)
    token_strength: float = 0.0
    token_steps: tuple[int, int] = (0, 0)


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
    """Everything one generation's processors need, passed through `cross_attention_kwargs`."""

    settings: ControlSettings
    frames: int
    masks: BoxMasks | None = None
    token_indices: tuple[int, ...] = ()
    reference_keep: dict[int, torch.Tensor] = field(default_factory=dict)  # tokens -> bool
    step: int = 0
    recording: bool = False  # the reference pass: store attn1 inputs, change nothing
    reference: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> (1, r, C)
    probe: AttentionProbe | None = None

    def active(self, control: str) -> bool:
        if getattr(self.settings, f"{control}_strength") <= 0:
            return False
        if control != "reference" and self.masks is None:
            return False
        if control == "token" and not self.token_indices:
            return False
        first, last = getattr(self.settings, f"{control}_steps")
        return first <= self.step < last

    def probing(self) -> bool:
        return self.probe is not None and self.step in self.probe.steps and not self.recording


class SpatialSelfAttention:
    """attn1 of a spatial transformer: masked reference attention."""

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
            return plain(hidden_states)
        reference = control.reference.get(self.layer)
        if reference is None or not control.active("reference"):
            return plain(hidden_states)
        frames = control.frames
        uncond, cond = hidden_states[:-frames], hidden_states[-frames:]
        context = torch.cat([cond, reference.expand(frames, -1, -1)], dim=1)
        settings = control.settings
        log_weight = math.log(settings.reference_strength)
        inside_bias = _key_bias(frames, tokens, reference.shape[1], log_weight, cond)
        inside = plain(cond, context, inside_bias)
        if control.masks is None:  # no boxes: the reference everywhere
            out = inside
        else:
            log_outside = log_weight + math.log(settings.reference_lambda)
            outside_bias = _key_bias(frames, tokens, reference.shape[1], log_outside, cond)
            outside = plain(cond, context, outside_bias)
            mask = control.masks.conditional(tokens).to(cond.dtype)[..., None]
            out = mask * inside + (1 - mask) * outside
            if control.probing():
                self._probe(attn, cond, context, mask[..., 0], inside_bias, outside_bias, control)
        return torch.cat([plain(uncond), out]) if uncond.shape[0] else out

    def _probe(self, attn, cond, context, mask, inside_bias, outside_bias, control):
        """Attention mass on the reference keys per query (head mean), inside vs outside."""
        tokens = cond.shape[1]
        logits = _logits(attn, cond, context)
        on_reference = []
        for bias in (inside_bias, outside_bias):
            biased = logits if bias is None else logits + bias[:, None]
            probs = biased.softmax(-1).mean(1)
            on_reference.append(probs[..., tokens:].sum(-1))
        mass = mask * on_reference[0] + (1 - mask) * on_reference[1]
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
        if control.active("token") and attention_mask is None:
            attention_mask = self._token_bias(hidden_states, text.shape[1], control)
        if control.probing() and control.masks is not None and control.token_indices:
            self._probe(attn, hidden_states, text, attention_mask, control)
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **extra)

    @staticmethod
    def _token_bias(hidden_states, text_tokens: int, control: VideoControl) -> torch.Tensor:
        """(batch, queries, text tokens): +log(1 + s) inside, -log(1 + s) outside on the
        subject's tokens of the conditional half; 0 elsewhere."""
        batch, tokens = hidden_states.shape[:2]
        frames = control.frames
        bias = hidden_states.new_zeros(batch, tokens, text_tokens)
        mask = control.masks.conditional(tokens).to(hidden_states.dtype)
        signed = (2 * mask - 1) * math.log1p(control.settings.token_strength)
        index = torch.tensor(control.token_indices, device=hidden_states.device)
        bias[-frames:, :, index] = signed[..., None].expand(-1, -1, len(index))
        return bias

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


def is_spatial(name: str) -> bool:
    return MOTION not in name and name.endswith((".attn1.processor", ".attn2.processor"))


@contextmanager
def controlled_attention(unet) -> Iterator[list[str]]:
    """Wrap every spatial attn1/attn2 processor for the duration of the block (the motion
    modules keep theirs); the originals, IP-Adapter weights included, are restored after.
    Yields the wrapped layer names."""
    original = dict(unet.attn_processors)
    processors, wrapped = {}, []
    for name, processor in original.items():
        if not is_spatial(name):
            processors[name] = processor
            continue
        layer = name.removesuffix(".processor")
        kind = SpatialSelfAttention if layer.endswith(".attn1") else SpatialCrossAttention
        processors[name] = kind(layer, processor)
        wrapped.append(layer)
    unet.set_attn_processor(processors)
    try:
        yield wrapped
    finally:
        unet.set_attn_processor(original)
