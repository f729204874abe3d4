"""Phrase-to-token mapping on the real CLIP tokenizer (OpenAI's BPE vocabulary), and the
layout losses on maps built by hand."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPTokenizer

from engines.errors import InputError
from engines.layout.guidance import group_boxes
from engines.layout.losses import (
    LossWeights,
    aggregate_maps,
    boundary_loss,
    box_coverage,
    feature_sizes,
    inside_loss,
    layout_loss,
    outside_loss,
)
from engines.phrases import box_token_indices, find_occurrences


@pytest.fixture(scope="module")
def tokenizer(clip_tokenizer_dir):
    return CLIPTokenizer.from_pretrained(clip_tokenizer_dir)


def tokens_at(tokenizer, prompt, indices):
    ids = tokenizer(prompt).input_ids
    return [tokenizer.convert_ids_to_tokens(ids[i]) for i in indices]


def test_single_and_multi_token_phrases(tokenizer):
    prompt = "a hippopotamus and a teddy-bear, on the grass."
    hippo, teddy, grass = box_token_indices(
        tokenizer, prompt, ["hippopotamus", "teddy-bear", "grass"]
    )
    # 'hippopotamus' is three BPE pieces; the hyphenated word three tokens; '.' is its own token
    assert tokens_at(tokenizer, prompt, hippo) == ["hippo", "potam", "us</w>"]
    assert tokens_at(tokenizer, prompt, teddy) == ["teddy</w>", "-</w>", "bear</w>"]
    assert tokens_at(tokenizer, prompt, grass) == ["grass</w>"]
    assert hippo == (2, 3, 4)  # position 0 is <|startoftext|>, 1 is 'a'


def test_phrases_with_articles_case_and_punctuation(tokenizer):
    prompt = "A Photo of a Cat, a dog, and another cat!"
    (a_cat,) = box_token_indices(tokenizer, prompt, ["a cat."])
    assert tokens_at(tokenizer, prompt, a_cat) == ["a</w>", "cat</w>"]
    assert a_cat == (4, 5)


def test_repeated_words_take_occurrences_in_order(tokenizer):
    prompt = "a cat next to a dog next to a cat"
    first, second, dog, third = box_token_indices(tokenizer, prompt, ["cat", "cat", "dog", "cat"])
    ids = tokenizer(prompt).input_ids
    cat_positions = [i for i, t in enumerate(ids) if t == ids[first[0]]]
    assert first == (cat_positions[0],) and second == (cat_positions[1],)
    assert third == second  # more boxes than occurrences: the last one is shared
    groups, membership = group_boxes([first, second, dog, third])
    assert len(groups) == 3 and membership == [0, 1, 2, 1]


def test_missing_or_truncated_phrases_are_input_errors(tokenizer):
    with pytest.raises(InputError, match="'cats' is not in the prompt"):
        box_token_indices(tokenizer, "a cat on a mat", ["cats"])
    long_prompt = "a " + "very " * 80 + "tall giraffe"
    with pytest.raises(InputError, match="77-token limit"):
        box_token_indices(tokenizer, long_prompt, ["giraffe"])


def test_find_occurrences_is_non_overlapping():
    assert find_occurrences([1, 2, 1, 2, 1], [1, 2]) == [0, 2]
    assert find_occurrences([5, 5, 5], [5, 5]) == [0]
    assert find_occurrences([1, 2], []) == []


def test_box_coverage_keeps_partial_cells():
    (mask,) = box_coverage([(0, 0, 96, 64)], image_hw=(128, 128), map_hw=(4, 4))
    assert mask[0].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert mask[:, 0].tolist() == [1.0, 1.0, 0.0, 0.0]
    (half,) = box_coverage([(16, 0, 128, 128)], image_hw=(128, 128), map_hw=(4, 4))
    assert half[0, 0].item() == pytest.approx(0.5)


def test_losses_are_low_for_a_map_filling_its_box_and_high_outside_it():
    masks = box_coverage([(0, 0, 64, 128)], image_hw=(128, 128), map_hw=(8, 8))
    inside_map = masks / masks.sum()
    outside_map = (1 - masks) / (1 - masks).sum()
    for term in (inside_loss, outside_loss, boundary_loss):
        assert term(inside_map, masks).item() < 0.05
    for term in (inside_loss, boundary_loss):
        assert term(outside_map, masks).item() > 0.45
    # the outside term is the mass of the strongest fifth of the outside cells (7 of 32): all of
    # a misplaced object's, a fifth of an even spread
    misplaced = torch.zeros(1, 8, 8)
    misplaced[0, 2:5, 5:7] = 1 / 6
    assert outside_loss(misplaced, masks).item() == pytest.approx(1.0)
    assert outside_loss(outside_map, masks).item() == pytest.approx(7 / 32)
    total, parts = layout_loss(outside_map, masks, LossWeights(1.0, 1.0, 0.5))
    assert set(parts) == {"inside", "outside", "boundary"}
    assert parts["boundary"] == pytest.approx(0.5)  # every column wrong, every row right
    # the weighted sum, not the mean: strength applies to each unit of weight
    assert total.item() == pytest.approx(1.0 + 7 / 32 + 0.5 * 0.5)
    assert LossWeights(1.0, 1.0, 0.5).mean_of(total.item()) == pytest.approx(total.item() / 2.5)
    only_inside, parts = layout_loss(outside_map, masks, LossWeights(1.0, 0.0, 0.0))
    assert only_inside.item() == pytest.approx(1.0) and set(parts) == {"inside"}


def test_self_attention_aggregation_spreads_a_peak_over_its_neighbours():
    latent_hw = (8, 8)
    h, w = feature_sizes(latent_hw)[2]
    cross = torch.zeros(h * w, 3)
    cross[:, 0] = 1.0
    cross[0, 1] = 1.0  # token 1 attends to the top-left cell only
    affinity = torch.eye(h * w) * 0.5
    affinity[:, 0] += 0.5  # every cell attends half to itself, half to the top-left
    raw = aggregate_maps([cross], None, latent_hw)
    aggregated = aggregate_maps([cross], [affinity], latent_hw)
    assert raw.shape == (3, h, w)
    assert (raw[1] > 0).sum() == 1
    assert (aggregated[1] > 0).all()
