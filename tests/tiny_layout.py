"""Tiny models for the layout tests: a Grounding DINO of the real class (Swin backbone, BERT
text encoder), saved with save_pretrained together with its processor, loadable through
AutoModelForZeroShotObjectDetection / AutoProcessor like IDEA-Research/grounding-dino-tiny."""

from __future__ import annotations

import string
from pathlib import Path

# Words the tests and examples ask the detector about; the rest of the vocabulary is letters.
WORDS = ["a", "cat", "dog", "red", "car", "apple", "pear", "lamp", "teddy", "bears", "and"]


def bert_uncased_style_vocab(words: list[str] = WORDS) -> list[str]:
    """A WordPiece vocabulary laid out like bert-base-uncased's first entries: [PAD], unused
    slots, [UNK] [CLS] [SEP] [MASK] at 100-103, then ASCII punctuation and digits in code-point
    order from 999. Grounding DINO's text masks use those ids ([CLS] 101, [SEP] 102, '.' 1012,
    '?' 1029) directly, so they must match; letters and a few whole words follow."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"[unused{i}]" for i in range(99, 994)]
    vocab += sorted(string.punctuation + string.digits)
    vocab += list(string.ascii_lowercase) + ["##" + c for c in string.ascii_lowercase]
    vocab += [w for w in words if w not in vocab]
    assert vocab[101] == "[CLS]" and vocab[102] == "[SEP]"
    assert vocab[1012] == "." and vocab[1029] == "?"
    return vocab


def write_bert_tokenizer(folder: Path):
    from transformers import BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(bert_uncased_style_vocab()) + "\n", "utf-8")
    return BertTokenizer.from_pretrained(folder)


def tiny_grounding_dino(vocab_size: int):
    """GroundingDinoForObjectDetection with grounding-dino-tiny's structure (Swin backbone,
    three feature levels plus one extra, BERT text encoder, two-stage decoder), narrow."""
    import torch
    from transformers import (
        BertConfig,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        SwinConfig,
    )

    backbone = SwinConfig(
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=7,
        out_features=["stage2", "stage3", "stage4"],
    )
    text = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=256,
    )
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # the box heads are tied across decoder layers; two is the minimum
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        num_queries=16,
    )
    torch.manual_seed(0)
    return GroundingDinoForObjectDetection(config).eval()


def save_tiny_grounding_dino(folder: Path) -> Path:
    """Model and processor in one folder in the files IDEA-Research/grounding-dino-tiny holds:
    the image processor's preprocessor_config.json and the tokenizer's files side by side,
    with no processor_config.json (the repo was written before processors saved one)."""
    import json

    from transformers import GroundingDinoImageProcessor

    folder = Path(folder)
    tokenizer = write_bert_tokenizer(folder)
    tokenizer.save_pretrained(folder)
    special = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]"}
    special |= {"sep_token": "[SEP]", "unk_token": "[UNK]"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), "utf-8")
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 256})
    image_processor.save_pretrained(folder)
    tiny_grounding_dino(len(tokenizer)).save_pretrained(folder)
    return folder
