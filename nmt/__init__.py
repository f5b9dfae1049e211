"""nmt: attention-based neural machine translation in PyTorch."""
