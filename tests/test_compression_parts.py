"""The compression engine's parts without the models: file format, fixed-length coder,
K-means codebooks, schedules, metrics, baselines, lost-token masks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tiny_compression import tiny_photo

from engines.compression import baselines
from engines.compression.bitstream import ZscHeader, read_zsc, token_checksum, write_zsc
from engines.compression.codebook import CodebookStore, ReducedCodebook, kmeans_codebook
from engines.compression.coders import FixedLengthCoder
from engines.compression.images import load_rgb
from engines.compression.quality import ms_ssim, psnr
from engines.compression.restoration import lose_tokens, nearest_fill
from engines.compression.schedule import coding_groups, cosine_boundaries
from engines.errors import InputError


def _header(**changes) -> ZscHeader:
    fields = dict(
        width=100,
        height=37,
        codebook_size=256,
        coder="model",
        model_id="amused/amused-512",
        model_fingerprint=bytes(range(8)),
        codebook_id=123456789,
        checksum=987654321,
        passes=12,
        prob_device="cuda",
    )
    return ZscHeader(**(fields | changes))


def test_header_round_trips_and_is_compact():
    header = _header()
    data = write_zsc(header, b"payload")
    parsed, payload = read_zsc(data)
    assert parsed == header
    assert payload == b"payload"
    # magic, 5 bytes, two varints, the model id, its hash, two CRCs, the K-means kind
    assert len(data) - len(b"payload") == 3 + 5 + 1 + 1 + 1 + len("amused/amused-512") + 8 + 8 + 1
    usage = _header(kmeans="usage", usage_fingerprint=bytes(range(8, 16)))
    data = write_zsc(usage, b"payload")
    assert read_zsc(data) == (usage, b"payload")
    assert len(data) - len(b"payload") == 3 + 5 + 1 + 1 + 1 + len("amused/amused-512") + 8 + 8 + 9


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: b"", "empty"),
        (lambda d: b"\x89PNG\r\n\x1a\n" + d[8:], "not a .zsc file"),
        (lambda d: d[:3] + bytes([3]) + d[4:], "format version 3"),
        (lambda d: d[:12], "truncated"),
        (lambda d: d[:4] + bytes([7]) + d[5:], "corrupt"),
        (lambda d: d[:5] + bytes([30]) + d[6:], "corrupt"),
    ],
)
def test_bad_files_are_input_errors(mutate, message):
    with pytest.raises(InputError, match=message):
        read_zsc(mutate(write_zsc(_header(), b"xyz")))


@pytest.mark.parametrize("k", [16, 32, 256, 1024, 8192])
def test_fixed_length_coder_is_exact_and_sized(k):
    rng = np.random.default_rng(k)
    tokens = rng.integers(0, k, size=(7, 11))
    tokens[0, 0], tokens[-1, -1] = 0, k - 1
    book = ReducedCodebook(np.zeros((k, 2), np.float32), np.arange(k), np.arange(k))
    coder = FixedLengthCoder()
    payload = coder.encode(tokens, book).payload
    bits = int(np.log2(k))
    assert len(payload) == -(-tokens.size * bits // 8)
    assert np.array_equal(coder.decode(payload, tokens.shape, book), tokens)
    with pytest.raises(InputError, match="truncated or corrupt"):
        coder.decode(payload[:-1], tokens.shape, book)


def test_token_checksum_sees_values_and_shape():
    tokens = np.arange(12).reshape(3, 4)
    assert token_checksum(tokens) == token_checksum(tokens.copy())
    assert token_checksum(tokens) != token_checksum(tokens.reshape(4, 3))
    changed = tokens.copy()
    changed[1, 1] += 1
    assert token_checksum(tokens) != token_checksum(changed)


def test_kmeans_is_deterministic_and_consistent():
    codes = np.random.default_rng(0).normal(size=(512, 8)).astype(np.float32)
    first, second = kmeans_codebook(codes, 32), kmeans_codebook(codes, 32)
    assert np.array_equal(first.labels, second.labels)
    assert np.array_equal(first.centroids, second.centroids)
    assert first.identity == second.identity
    assert sorted(set(first.labels.tolist())) == list(range(32))
    # each centroid is its members' mean, each representative is one of its members
    for cluster in range(32):
        members = codes[first.labels == cluster].astype(np.float64)
        assert np.allclose(first.centroids[cluster], members.mean(axis=0), atol=1e-5)
        assert first.labels[first.representatives[cluster]] == cluster
    # k = N is the codebook itself
    full = kmeans_codebook(codes, 512)
    assert np.array_equal(full.labels, np.arange(512))


def test_codebook_store_caches_on_disk_by_model_and_k(tmp_path):
    codes = np.random.default_rng(1).normal(size=(256, 4)).astype(np.float32)
    store = CodebookStore(codes, "abc123", tmp_path)
    book = store.get(16)
    assert store.cache_path(16) == tmp_path / "abc123-k16.npz"
    assert store.cache_path(16).is_file()
    again = CodebookStore(codes, "abc123", tmp_path).get(16)  # from disk
    assert np.array_equal(again.labels, book.labels)
    assert np.array_equal(again.centroids, book.centroids)
    assert np.array_equal(again.representatives, book.representatives)
    with pytest.raises(InputError, match="not offered"):
        store.get(24)
    with pytest.raises(InputError, match="not offered"):
        store.get(512)  # larger than this codebook


def test_coding_groups_partition_the_grid_in_8_to_16_passes():
    groups = coding_groups(32, 32)
    assert 8 <= len(groups) <= 16
    flat = np.concatenate(groups)
    assert np.array_equal(np.sort(flat), np.arange(32 * 32))
    assert all(len(g) > 0 for g in groups)
    assert len(groups[0]) < len(groups[-1])  # cosine: little context first, few tokens
    assert all(np.array_equal(a, b) for a, b in zip(groups, coding_groups(32, 32), strict=True))
    assert len(coding_groups(2, 3)) == 6  # smaller grids: one token per pass
    assert cosine_boundaries(100, 4)[-1] == 100


def test_psnr_and_ms_ssim():
    image = tiny_photo(200, 180)
    assert psnr(image, image) == float("inf")
    noisy = np.clip(image.astype(int) + 10, 0, 255).astype(np.uint8)
    expected = 10 * np.log10(255**2 / np.mean((image.astype(float) - noisy) ** 2))
    assert psnr(image, noisy) == pytest.approx(expected)
    value, kind = ms_ssim(image, noisy)
    assert kind == "MS-SSIM" and 0 < value < 1
    small = tiny_photo(64, 48)
    value, kind = ms_ssim(small, small)
    assert kind.startswith("SSIM") and value == pytest.approx(1.0)
    assert ms_ssim(small[:8, :8], small[:8, :8])[0] is None


@pytest.mark.parametrize("codec", baselines.available_codecs())
def test_baselines_are_real_pillow_encodes(codec):
    image = tiny_photo(160, 120)
    smallest = baselines.smallest(image, codec)
    with Image.open(io.BytesIO(smallest.data)) as picture:
        assert picture.format == {"JPEG": "JPEG", "WebP": "WEBP", "AVIF": "AVIF"}[codec]
        assert picture.size == (160, 120)
    assert smallest.data == baselines.encode(image, codec, smallest.quality)
    assert np.array_equal(baselines.decode(smallest.data, (160, 120))[0], smallest.decoded)
    budget = int(smallest.nbytes * 0.7)
    matched = baselines.at_budget(image, codec, budget)
    assert matched is not None and matched.nbytes <= budget
    assert matched.decoded.shape == image.shape
    assert matched.coded_size[0] < 160  # below its smallest native size it must downscale
    assert np.array_equal(baselines.decode(matched.data, (160, 120))[0], matched.decoded)
    assert baselines.at_budget(image, codec, 10) is None  # nothing fits in 10 bytes


def test_lost_tokens_and_nearest_fill():
    lost = lose_tokens((10, 10), 0.3, seed=4)
    assert lost.sum() == 30
    assert np.array_equal(lost, lose_tokens((10, 10), 0.3, seed=4))
    assert not np.array_equal(lost, lose_tokens((10, 10), 0.3, seed=5))
    assert lose_tokens((1, 3), 0.95, 0).sum() == 2  # one token always survives
    tokens = np.arange(100).reshape(10, 10)
    filled = nearest_fill(tokens, lost)
    assert np.array_equal(filled[~lost], tokens[~lost])
    assert set(filled[lost].tolist()) <= set(tokens[~lost].tolist())
    with pytest.raises(InputError, match="between 0 and"):
        lose_tokens((4, 4), 1.0, 0)


def test_image_loading_rejects_bad_inputs(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InputError, match="not an image"):
        load_rgb(text)
    with pytest.raises(InputError, match="does not exist"):
        load_rgb(tmp_path / "missing.png")
    with pytest.raises(InputError, match="empty"):
        load_rgb(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(InputError, match="up to 2048"):
        load_rgb(np.zeros((2, 2049, 3), np.uint8))
    png = io.BytesIO()
    Image.fromarray(tiny_photo(40, 30)).save(png, format="PNG")
    with pytest.raises(InputError, match="damaged or truncated"):
        load_rgb(png.getvalue()[:200])
    rgba = np.dstack([tiny_photo(20, 10), np.full((10, 20), 128, np.uint8)])
    assert load_rgb(rgba).shape == (10, 20, 3)
    assert load_rgb(np.zeros((5, 6), np.float32)).shape == (5, 6, 3)
