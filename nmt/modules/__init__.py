"""Model building blocks: encoder, attention scorers, decoders, and the seq2seq wrapper."""
