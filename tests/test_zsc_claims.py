""".zsc files whose header claims more work than their bytes can hold (issue: a 67-byte file
claiming a 2048 px image took 41 s to decode): the model coder's payload must be long enough for
the tokens the header claims, and the pass count at most what the encoder writes. Refused before
any decoding, naming the limit; the bound never refuses a real file."""

from __future__ import annotations

import time

import numpy as np
import pytest
from tiny_compression import compression_studio, tiny_amused_in, tiny_photo

from engines.compression.bitstream import MAX_PASSES, read_zsc, write_zsc
from engines.compression.codebook import ReducedCodebook
from engines.compression.coders import ModelCoder, min_model_payload_bytes
from engines.errors import InputError


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    studio, undo = compression_studio(tiny_amused_in(base), base / "zss-cache")
    yield studio.engine("compression")
    undo()


@pytest.fixture(scope="module")
def model_file(engine) -> bytes:
    return engine.compress(tiny_photo(72, 52), codebook_size=16, coder="model", baselines=False).zsc


def _rewritten(data: bytes, payload: bytes | None = None, **changes) -> bytes:
    header, old = read_zsc(data)
    header = header.__class__(**(header.__dict__ | changes))
    return write_zsc(header, old if payload is None else payload)


def test_a_tiny_file_claiming_the_largest_image_is_refused_before_decoding(engine, model_file):
    crafted = _rewritten(model_file, b"\x17" * 20, width=2048, height=2048)
    assert len(crafted) < 100
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"claims \d+ tokens \(\d+x\d+\) in 20 bytes.*at least"):
        engine.decompress(crafted)
    assert time.perf_counter() - started < 2.0


def test_a_file_claiming_more_passes_than_the_encoder_writes_is_refused(model_file):
    with pytest.raises(InputError, match=f"claims 255 transformer passes.*at most {MAX_PASSES}"):
        read_zsc(_rewritten(model_file, passes=255))
    assert read_zsc(_rewritten(model_file, passes=MAX_PASSES))[0].passes == MAX_PASSES


def test_real_files_pass_the_bound_and_still_decode(engine, model_file):
    decoded = engine.decompress(model_file)
    assert decoded.tokens.shape == (4, 5)


class _Oracle:
    """A token model that knows the answer: all its probability on the true token, the best
    case for the coder, so the shortest payload the coder can make for a grid."""

    def __init__(self, tokens: np.ndarray, k: int):
        self.tokens, self.k = tokens.reshape(-1), k

    def probabilities(self, known, codebook, positions):
        probs = np.zeros((len(positions), self.k))
        probs[np.arange(len(positions)), self.tokens[positions]] = 1.0
        return probs


@pytest.mark.parametrize(
    ("k", "shape"),
    [(k, shape) for k in (16, 256, 8192) for shape in ((1, 1), (4, 5), (32, 32))]
    + [(16, (128, 128))],  # a 2048 px image's grid
)
def test_the_bound_is_below_the_shortest_payload_the_coder_makes(k, shape):
    rng = np.random.default_rng(k)
    tokens = rng.integers(0, k, size=shape)
    codebook = ReducedCodebook(
        centroids=np.zeros((k, 1)), labels=np.arange(k), representatives=np.arange(k)
    )
    coder = ModelCoder(_Oracle(tokens, k))
    payload = coder.encode(tokens, codebook).payload
    assert min_model_payload_bytes(tokens.size, k) <= len(payload)
    coder.check_payload(payload, shape, k)  # not refused
    assert np.array_equal(coder.decode(payload, shape, codebook), tokens)
