"""The speech engine's parts on synthetic data: kNN matching, the HiFi-GAN module against the
published checkpoint layout, style transfer, audio I/O, sentence splitting, WER."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny_speech import harmonic_tone

from engines.errors import InputError, ModelUnavailable
from engines.speech.audio import (
    TARGET_RMS_DBFS,
    join_with_pauses,
    load_clip,
    read_clip,
    rms_dbfs,
    write_synthetic_wav,
)
from engines.speech.hifigan import HiFiGANConfig, HiFiGANGenerator, WeightNormConv1d, load_hifigan
from engines.speech.knn import knn_average
from engines.speech.metrics import basic_normalise, word_error_rate
from engines.speech.style import Prosody, apply_move, measure, plan_move, transfer
from engines.speech.text import MAX_TEXT_CHARS, check_text, split_sentences

# -- kNN matching ---------------------------------------------------------------------------


def test_each_output_frame_is_the_mean_of_its_four_nearest_reference_frames():
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(40, 16, generator=generator)
    references = torch.randn(300, 16, generator=generator) * torch.rand(300, 1, generator=generator)
    out = knn_average(queries, references, k=4)

    q = queries.numpy() / np.linalg.norm(queries.numpy(), axis=1, keepdims=True)
    r = references.numpy() / np.linalg.norm(references.numpy(), axis=1, keepdims=True)
    cosine_distance = 1.0 - q @ r.T
    for row, distances in enumerate(cosine_distance):
        nearest = np.argsort(distances)[:4]
        np.testing.assert_allclose(out[row].numpy(), references.numpy()[nearest].mean(0), atol=1e-5)


def test_matching_uses_direction_not_length():
    references = torch.tensor([[1.0, 0.0], [10.0, 0.1], [0.0, 1.0], [0.1, 5.0]])
    out = knn_average(torch.tensor([[3.0, 0.0]]), references, k=2)
    torch.testing.assert_close(out, references[:2].mean(0, keepdim=True))


def test_matching_rejects_k_larger_than_the_matching_set():
    with pytest.raises(InputError, match="k must be between 1 and the 3 frames"):
        knn_average(torch.randn(5, 4), torch.randn(3, 4), k=4)


# -- HiFi-GAN ---------------------------------------------------------------------------------


def published_vocoder_shapes(feature_dim=1024, hidden=512, initial=512) -> dict[str, tuple]:
    """Parameter names and shapes of kNN-VC's prematched generator (HiFi-GAN V1 + lin_pre,
    config_v1_wavlm.json), written from the reference architecture: weight-normed convs store
    weight_g (dim-0 norms), weight_v and bias; transposed convs keep (in, out, kernel)."""
    shapes: dict[str, tuple] = {
        "lin_pre.weight": (hidden, feature_dim),
        "lin_pre.bias": (hidden,),
    }

    def weight_normed(name, in_ch, out_ch, kernel, transposed=False):
        v = (in_ch, out_ch, kernel) if transposed else (out_ch, in_ch, kernel)
        shapes.update(
            {f"{name}.weight_g": (v[0], 1, 1), f"{name}.weight_v": v, f"{name}.bias": (out_ch,)}
        )

    weight_normed("conv_pre", hidden, initial, 7)
    channels = initial
    for i, kernel in enumerate((20, 16, 4, 4)):
        weight_normed(f"ups.{i}", channels, channels // 2, kernel, transposed=True)
        channels //= 2
        for j, size in enumerate((3, 7, 11)):
            for branch in ("convs1", "convs2"):
                for c in range(3):
                    weight_normed(f"resblocks.{3 * i + j}.{branch}.{c}", channels, channels, size)
    weight_normed("conv_post", channels, 1, 7)
    return shapes


def test_generator_has_the_published_checkpoints_names_and_shapes():
    expected = published_vocoder_shapes()
    ours = {name: tuple(t.shape) for name, t in HiFiGANGenerator().state_dict().items()}
    assert ours == expected
    assert sum(np.prod(s) for s in expected.values()) > 14_000_000


def test_a_checkpoint_in_the_published_layout_loads_strictly(tmp_path):
    shapes = published_vocoder_shapes(feature_dim=24, hidden=16, initial=16)
    generator = torch.Generator().manual_seed(1)
    state = {name: torch.randn(shape, generator=generator) * 0.1 for name, shape in shapes.items()}
    path = tmp_path / "prematch_g.pt"
    torch.save({"generator": state}, path)

    vocoder = load_hifigan(path)
    assert vocoder.config == HiFiGANConfig(
        feature_dim=24, hidden_dim=16, upsample_initial_channel=16
    )
    for name, tensor in vocoder.state_dict().items():
        torch.testing.assert_close(tensor, state[name])
    with torch.no_grad():
        wave = vocoder(torch.randn(1, 7, 24))
    assert wave.shape == (1, 7 * 320) and float(wave.abs().max()) <= 1.0


def test_a_checkpoint_with_a_missing_or_misshapen_key_is_refused(tmp_path):
    shapes = published_vocoder_shapes(feature_dim=24, hidden=16, initial=16)
    state = {name: torch.zeros(shape) for name, shape in shapes.items()}
    del state["conv_post.bias"]
    torch.save({"generator": state}, tmp_path / "missing.pt")
    with pytest.raises(ModelUnavailable, match="conv_post.bias"):
        load_hifigan(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="cannot read the checkpoint"):
        load_hifigan(tmp_path / "garbage.pt")


@pytest.mark.parametrize("transposed", [False, True])
def test_weight_norm_conv_matches_torchs_weight_norm(transposed):
    torch.manual_seed(0)
    ours = WeightNormConv1d(6, 4, 5, stride=2, padding=1, transposed=transposed)
    conv = (torch.nn.ConvTranspose1d if transposed else torch.nn.Conv1d)(6, 4, 5, 2, padding=1)
    reference = torch.nn.utils.parametrizations.weight_norm(conv)
    with torch.no_grad():
        reference.parametrizations.weight.original0.copy_(ours.weight_g)
        reference.parametrizations.weight.original1.copy_(ours.weight_v)
        reference.bias.copy_(torch.randn(4))
        ours.bias.copy_(reference.bias)
    x = torch.randn(2, 6, 33)
    torch.testing.assert_close(ours(x), reference(x))


# -- style ------------------------------------------------------------------------------------


def test_style_transfer_moves_f0_median_within_5_percent_and_rate_as_expected():
    rate = 16000
    source = harmonic_tone(110.0, 4.0, rate, vibrato=0.04, bursts_per_second=4)
    style = harmonic_tone(210.0, 3.0, rate, vibrato=0.08, bursts_per_second=6)
    target = measure(style, rate)
    assert target.f0_median_hz == pytest.approx(210.0, rel=0.03)
    assert target.syllables_per_second == pytest.approx(6.0, rel=0.1)

    moved, before, move = transfer(source, rate, target)
    assert before.syllables_per_second == pytest.approx(4.0, rel=0.1)
    expected_factor = before.syllables_per_second / target.syllables_per_second
    assert move.duration_factor == pytest.approx(expected_factor)
    assert len(moved) / len(source) == pytest.approx(expected_factor, rel=0.02)
    after = measure(moved, rate)
    assert after.f0_median_hz == pytest.approx(target.f0_median_hz, rel=0.05)
    assert after.f0_range_semitones > before.f0_range_semitones  # wider vibrato moved over


def test_plan_is_clamped_and_leaves_unvoiced_pitch_alone():
    flat = Prosody(None, None, 4.0, -30.0)
    move = plan_move(flat, Prosody(200.0, 4.0, 40.0, -20.0))
    assert move.f0_median_hz is None and move.f0_range_factor == 1.0
    assert move.duration_factor == 0.5  # 10x faster asked, halving is the limit
    assert move.gain_db == pytest.approx(10.0)


def test_loudness_moves_to_the_style_level():
    tone = harmonic_tone(150.0, 1.5) * 0.1
    move = plan_move(Prosody(None, None, 0, rms_dbfs(tone)), Prosody(None, None, 0, -12.0))
    assert rms_dbfs(apply_move(tone, 16000, move)) == pytest.approx(-12.0, abs=0.1)


# -- audio I/O --------------------------------------------------------------------------------


def _variants(tmp_path):
    """One sound in many shapes: rates 8-48 kHz, int16/int32/float, mono/stereo, files."""
    import librosa

    base = harmonic_tone(140.0, 2.5, 48000, bursts_per_second=3)

    def at(rate):
        return librosa.resample(base, orig_sr=48000, target_sr=rate)

    stereo_16k = np.stack([at(16000), at(16000)], axis=1)
    sf.write(tmp_path / "stereo.wav", np.stack([at(44100)] * 2, axis=1), 44100, subtype="PCM_16")
    sf.write(tmp_path / "mono.flac", at(22050), 22050)
    return {
        "float 48k mono": (48000, base),
        "int16 8k mono": (8000, (at(8000) * 32767).astype(np.int16)),
        "int16 16k stereo (gradio layout)": (16000, (stereo_16k * 32767).astype(np.int16)),
        "float 24k stereo channels-first": (24000, np.stack([at(24000)] * 2)),
        "int32 32k mono": (32000, (at(32000) * 2**31 * 0.999).astype(np.int32)),
        "wav 44.1k stereo int16 file": str(tmp_path / "stereo.wav"),
        "flac 22.05k file": str(tmp_path / "mono.flac"),
    }


def test_inputs_of_every_rate_layout_and_type_are_normalised_the_same(tmp_path):
    reference = load_clip(
        (48000, harmonic_tone(140.0, 2.5, 48000, bursts_per_second=3)), "x", 16000
    )
    for name, source in _variants(tmp_path).items():
        clip = load_clip(source, name, 16000)
        assert clip.sample_rate == 16000 and clip.samples.dtype == np.float32, name
        assert clip.samples.ndim == 1, name
        assert rms_dbfs(clip.samples) == pytest.approx(TARGET_RMS_DBFS, abs=0.3), name
        assert clip.duration == pytest.approx(reference.duration, abs=0.05), name
        assert clip.level_dbfs == pytest.approx(reference.level_dbfs, abs=0.5), name
        correlation = _aligned_correlation(clip.samples, reference.samples, max_lag=1600)
        assert correlation > 0.9, (name, correlation)


def _aligned_correlation(a: np.ndarray, b: np.ndarray, max_lag: int) -> float:
    """Best correlation over shifts of up to `max_lag` samples (trimming may start a few
    milliseconds apart at different rates)."""
    n = min(len(a), len(b)) - max_lag
    core = b[max_lag // 2 : max_lag // 2 + n]
    return max(
        float(np.corrcoef(a[shift : shift + n], core)[0, 1]) for shift in range(0, max_lag, 4)
    )


def test_long_prompts_keep_their_most_speech_like_window():
    rate = 16000
    speech = harmonic_tone(120.0, 5.0, rate, bursts_per_second=4)
    hum = harmonic_tone(50.0, 20.0, rate)  # 30 dB under the speech: kept by the trim, not speech
    hum *= 10 ** ((rms_dbfs(speech) - 30 - rms_dbfs(hum)) / 20)
    clip = load_clip(
        (rate, np.concatenate([hum, speech, hum])), "prompt", rate, 5.0, pick_best=True
    )
    assert clip.duration == pytest.approx(5.0, abs=0.01)
    assert _aligned_correlation(clip.samples, speech, max_lag=800) > 0.9


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (None, "No voice clip"),
        ((16000, np.zeros(32000, dtype=np.int16)), "is silent"),
        ((16000, harmonic_tone(120.0, 0.5)), "0.50 s of sound"),
        ((16000, np.zeros(0)), "is empty"),
    ],
)
def test_bad_clips_are_refused_with_a_reason(source, message):
    with pytest.raises(InputError, match=message):
        load_clip(source, "voice", 16000)


def test_unreadable_and_missing_files_are_refused(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio")
    with pytest.raises(InputError, match="cannot be read as audio"):
        read_clip(str(fake), "voice")
    with pytest.raises(InputError, match="does not exist"):
        read_clip(str(tmp_path / "absent.wav"), "voice")


def test_written_wav_is_labelled_synthetic_and_replaces_atomically(tmp_path):
    path = write_synthetic_wav(tmp_path / "out.wav", harmonic_tone(100.0, 1.0, 24000), 24000, "tts")
    with sf.SoundFile(path) as f:
        assert (f.samplerate, f.channels, f.subtype) == (24000, 1, "PCM_16")
        assert "Synthetic" in f.title and "synthetic speech" in f.comment
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


# -- text -------------------------------------------------------------------------------------


def test_sentences_split_at_ends_but_not_decimals_abbreviations_or_initials():
    text = "Dr. Smith paid 3.5 dollars!  Was it J. R. R. Tolkien?\nYes, it was.   “Fine.” End"
    assert split_sentences(text) == [
        "Dr. Smith paid 3.5 dollars!",
        "Was it J. R. R. Tolkien?",
        "Yes, it was.",
        "“Fine.”",
        "End",
    ]


def test_long_sentences_are_cut_at_clauses_then_spaces_and_keep_every_word():
    sentence = ", ".join(f"clause number {i} goes on" for i in range(30)) + "."
    chunks = split_sentences(sentence, max_chars=80)
    assert all(len(chunk) <= 80 for chunk in chunks) and len(chunks) > 5
    assert " ".join(chunks).split() == sentence.split()
    words = split_sentences("word " * 60, max_chars=50)
    assert all(len(chunk) <= 50 for chunk in words) and " ".join(words).split() == ["word"] * 60


def test_text_limits():
    with pytest.raises(InputError, match="empty"):
        check_text("  \n ")
    with pytest.raises(InputError, match=f"limit is {MAX_TEXT_CHARS}"):
        check_text("a" * (MAX_TEXT_CHARS + 1))


def test_pieces_join_in_order_with_pauses():
    pieces = [np.full(10, 1.0), np.full(5, 2.0), np.full(3, 3.0)]
    joined = join_with_pauses(pieces, 100, 0.04)
    assert joined.tolist() == [1.0] * 10 + [0.0] * 4 + [2.0] * 5 + [0.0] * 4 + [3.0] * 3


# -- WER --------------------------------------------------------------------------------------


def test_word_error_rate_counts_edits_over_reference_words():
    assert word_error_rate("the cat sat", "the cat sat") == 0.0
    assert word_error_rate("the cat sat on the mat", "the bat sat on mat") == pytest.approx(2 / 6)
    assert word_error_rate("a b", "a b c d") == 1.0
    assert basic_normalise("Hello, World! It's 3.") == "hello world it's 3"
