"""Attention processors that record cross- and self-attention probabilities at chosen UNet
layers, during guidance forwards only; elsewhere they run the processor they replaced."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class LayerMap:
    """Where a backbone's layout-relevant attention lives.

    `blocks`: UNet blocks whose transformers are recorded (cross: attn2, self: attn1).
    `last_block`: the guidance forward stops after this block; nothing later feeds the loss.
    """

    blocks: tuple[str, ...]
    last_block: str


# SD 1.5 and 2.1-base share the UNet layout: at 512 px, down_blocks.2 and up_blocks.1 attend
# at 16x16 and the mid block at 8x8 (1/4 and 1/8 of the latent side). SDXL needs its own map.
LAYER_MAPS = {
    "sd15": LayerMap(("down_blocks.2", "mid_block", "up_blocks.1"), "up_blocks.1"),
    "sd21base": LayerMap(("down_blocks.2", "mid_block", "up_blocks.1"), "up_blocks.1"),
}


class StopForward(Exception):
    """Raised after the last recorded block to skip the rest of a guidance forward."""


@dataclass
class AttentionStore:
    """Head-averaged attention probabilities of the current guidance forward, per layer.

    cross[layer]: (batch, pixels, tokens); self_[layer]: (batch, pixels, pixels).
    `log` keeps (step, layer, kind, shape) of every recording, to check what was stored when.
    """

    recording: bool = False
    stop_early: bool = True
    step: int = -1
    cross: dict[str, torch.Tensor] = field(default_factory=dict)
    self_: dict[str, torch.Tensor] = field(default_factory=dict)
    log: list[tuple[int, str, str, tuple[int, ...]]] = field(default_factory=list)

    @contextmanager
    def record(self, step: int) -> Iterator[AttentionStore]:
        self.cross.clear()
        self.self_.clear()
        self.recording, self.step = True, step
        try:
            yield self
        finally:
            self.recording = False

    def add(self, layer: str, kind: str, probs: torch.Tensor) -> None:
        (self.cross if kind == "cross" else self.self_)[layer] = probs
        self.log.append((self.step, layer, kind, tuple(probs.shape)))


class RecordingAttnProcessor:
    """Computes attention explicitly (the default SDPA path never forms the probabilities) and
    stores their head mean while the store records; otherwise defers to `fallback`.

    Follows diffusers src/diffusers/models/attention_processor.py (AttnProcessor.__call__) at
    0.42.1."""

    def __init__(self, store: AttentionStore, layer: str, kind: str, fallback):
        self.store = store
        self.layer = layer
        self.kind = kind
        self.fallback = fallback

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        if not self.store.recording:
            return self.fallback(
                attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs
            )
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        spatial = hidden_states.ndim == 4
        if spatial:
            batch, channels, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        batch, length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        )
        attention_mask = attn.prepare_attention_mask(attention_mask, length, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        query = attn.head_to_batch_dim(query)

        probs = attn.get_attention_scores(query, key, attention_mask)
        self.store.add(self.layer, self.kind, probs.unflatten(0, (batch, attn.heads)).mean(1))

        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if spatial:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channels, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def _layer_of(processor_name: str, layer_map: LayerMap) -> tuple[str, str] | None:
    """(layer, kind) for a processor name such as
    'up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor', or None if not recorded."""
    if not any(processor_name.startswith(block + ".") for block in layer_map.blocks):
        return None
    layer = processor_name.removesuffix(".processor")
    if layer.endswith(".attn2"):
        return layer, "cross"
    if layer.endswith(".attn1"):
        return layer, "self"
    return None


@contextmanager
def recording_attention(unet, store: AttentionStore, layer_map: LayerMap) -> Iterator[list[str]]:
    """Install recording processors on the mapped layers (and the early-stop hook) for the
    duration of the block; the original processors are restored afterwards. Yields the
    recorded layer names."""
    original = dict(unet.attn_processors)
    processors, recorded = {}, []
    for name, processor in original.items():
        where = _layer_of(name, layer_map)
        if where is None:
            processors[name] = processor
        else:
            processors[name] = RecordingAttnProcessor(store, *where, fallback=processor)
            recorded.append(where[0])

    def stop(module, inputs, output):
        if store.recording and store.stop_early:
            raise StopForward

    unet.set_attn_processor(processors)
    hook = unet.get_submodule(layer_map.last_block).register_forward_hook(stop)
    try:
        yield recorded
    finally:
        hook.remove()
        unet.set_attn_processor(original)
