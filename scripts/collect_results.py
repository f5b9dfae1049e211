"""See `python scripts/collect_results.py --help` (the same tool is installed as `nmt-collect`).

    python scripts/collect_results.py multirun/study --by-length plots/by_length
    python scripts/collect_results.py runs multirun --runs
"""

from nmt.cli import collect_main

if __name__ == "__main__":
    collect_main()
