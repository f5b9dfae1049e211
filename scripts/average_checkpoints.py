"""See `python scripts/average_checkpoints.py --help` (the same tool is installed as `nmt-average`)."""

from nmt.cli import average_main

if __name__ == "__main__":
    average_main()
