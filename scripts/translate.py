"""See `python scripts/translate.py --help` (the same tool is installed as `nmt-translate`)."""

from nmt.translate_cli import main

if __name__ == "__main__":
    main()
