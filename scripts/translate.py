"""See `python scripts/translate.py --help` (the same tool is installed as `nmt-translate`)."""

from nmt.cli import translate_main

if __name__ == "__main__":
    translate_main()
