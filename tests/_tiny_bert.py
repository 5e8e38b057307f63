"""A two-layer, 16-wide BERT with random weights (seed 0) and a WordPiece vocabulary of the
words given, saved as a local Hugging Face folder (``hf:PATH``, minilm_l6's family): the
tests' text backbone, built in a second, nothing downloaded."""

from __future__ import annotations

from pathlib import Path


def tiny_bert(folder: Path, words: list[str], max_length: int) -> Path:
    """Save the tokenizer (``words`` after the special tokens; ``##x`` pieces continue a
    word) and the model into ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    BertTokenizerFast(tokenizer_object=tok, model_max_length=max_length).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=32,
                         max_position_embeddings=32)).save_pretrained(folder)
    return folder
