"""Data: obtaining corpora, reading parallel text, sentencepiece, word alignments, the memory-mapped cache, batching."""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "ParallelFiles": "sources",
    "Multi30k": "sources",
    "ToyTask": "sources",
    "SplitFiles": "sources",
    "read_lines": "corpus",
    "read_parallel": "corpus",
    "Tokenizer": "tokenizer",
    "TokenizerConfig": "tokenizer",
    "build_tokenizers": "tokenizer",
    "encode_corpus": "encoding",
    "IndexedPairs": "indexed",
    "open_pairs": "indexed",
    "Alignment": "alignments",
    "read_pharaoh": "alignments",
    "format_pharaoh": "alignments",
    "Batch": "batching",
    "collate": "batching",
    "bucket_batches": "batching",
    "ParallelData": "batching",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
