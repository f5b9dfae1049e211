"""Model building blocks: encoder, attention scorers, decoders, and the seq2seq wrapper."""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "RNNEncoder": "encoder",
    "EncoderOutput": "encoder",
    "Attention": "attention",
    "NORMALIZERS": "normalizers",
    "sparsemax": "normalizers",
    "entmax15": "normalizers",
    "Scorer": "attention",
    "AdditiveScorer": "attention",
    "CoverageScorer": "attention",
    "DotScorer": "attention",
    "ScaledDotScorer": "attention",
    "GeneralScorer": "attention",
    "ConcatScorer": "attention",
    "LocationScorer": "attention",
    "FixedContext": "attention",
    "RecurrentDecoder": "decoder",
    "BahdanauDecoder": "decoder",
    "LuongDecoder": "decoder",
    "Memory": "decoder",
    "Seq2Seq": "seq2seq",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
