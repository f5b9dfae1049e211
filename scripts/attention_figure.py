"""See `python scripts/attention_figure.py --help` (the same tool is installed as `nmt-attention`)."""

from nmt.attention_figure import main

if __name__ == "__main__":
    main()
