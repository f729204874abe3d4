"""Image <-> token grid through the VQGAN, with a (possibly K-means-reduced) codebook."""

from __future__ import annotations

import numpy as np

from .codebook import ReducedCodebook
from .images import pad_to_multiple


class VQTokenizer:
    """aMUSEd's VQGAN (f16, inputs in [0, 1]). Any image size: the image is padded to a multiple
    of 16 by repeating its edge, and the decoded image is cropped back."""

    def __init__(self, vqvae, device):
        self.vqvae = vqvae
        self.device = device
        self.factor = 2 ** (len(vqvae.config.block_out_channels) - 1)

    @property
    def code_vectors(self) -> np.ndarray:
        return self.vqvae.quantize.embedding.weight.detach().float().cpu().numpy()

    def grid_shape(self, height: int, width: int) -> tuple[int, int]:
        return -(-height // self.factor), -(-width // self.factor)

    def _latents(self, image: np.ndarray):
        """The encoder's latent vectors, (h * w, D) on the device, and the grid's (h, w)."""
        import torch

        padded = pad_to_multiple(image, self.factor)
        pixels = torch.from_numpy(padded).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        with torch.no_grad():
            latents = self.vqvae.encode(pixels).latents  # (1, D, h, w)
        _, channels, height, width = latents.shape
        return latents.permute(0, 2, 3, 1).reshape(-1, channels), (height, width)

    def latent_vectors(self, image: np.ndarray) -> np.ndarray:
        """(h * w, D) float32: what the quantiser sees, before any codebook."""
        return self._latents(image)[0].float().cpu().numpy()

    def encode(self, image: np.ndarray, codebook: ReducedCodebook) -> np.ndarray:
        """(h, w) cluster indices: each latent vector goes to its nearest centroid (for the full
        codebook that is the VQGAN's own quantisation)."""
        import torch

        flat, (height, width) = self._latents(image)
        centroids = torch.from_numpy(codebook.centroids).to(self.device)
        with torch.no_grad():
            tokens = torch.argmin(torch.cdist(flat, centroids), dim=1)
        return tokens.reshape(height, width).cpu().numpy().astype(np.int64)

    def decode(
        self, tokens: np.ndarray, codebook: ReducedCodebook, size: tuple[int, int]
    ) -> np.ndarray:
        """(H, W, 3) uint8 image of size (height, width) from cluster indices. One grid at a
        time: batching changes kernel choices, and the same tokens must give the same image."""
        import torch

        vectors = torch.from_numpy(codebook.centroids).to(self.device)
        index = torch.from_numpy(np.asarray(tokens, dtype=np.int64)).to(self.device)
        quant = vectors[index].permute(2, 0, 1)[None]  # (1, D, h, w)
        with torch.no_grad():
            # VQModel.decode would look codes up in the full codebook; we feed the vectors
            hidden = self.vqvae.post_quant_conv(quant)
            spatial = quant if self.vqvae.config.norm_type == "spatial" else None
            decoded = self.vqvae.decoder(hidden, spatial)
        image = (decoded[0].clamp(0, 1) * 255.0).round().to(torch.uint8)
        height, width = size
        return image.permute(1, 2, 0)[:height, :width].cpu().numpy()
