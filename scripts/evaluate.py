"""See `python scripts/evaluate.py --help` (the same tool is installed as `nmt-evaluate`)."""

from nmt.cli import evaluate_main

if __name__ == "__main__":
    evaluate_main()
