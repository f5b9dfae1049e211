"""See `python scripts/export_model.py --help`: a checkpoint -> a folder that translates with torch alone."""

from nmt.export import main

if __name__ == "__main__":
    main()
