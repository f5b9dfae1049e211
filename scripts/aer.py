"""See `python scripts/aer.py --help` (the same tool is installed as `nmt-aer`)."""

from nmt.cli import aer_main

if __name__ == "__main__":
    aer_main()
