"""See `python scripts/prepare_data.py --help` (the same tool is installed as `nmt-prepare`)."""

from nmt.cli import prepare_main

if __name__ == "__main__":
    prepare_main()
