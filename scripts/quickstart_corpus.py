"""Quickstart corpus: the standard library's docstrings (or --corpus), split into train and
held-out plain text. Thin wrapper over src/data/stdlib_corpus.py."""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.data.stdlib_corpus import split_heldout, write_stdlib_corpus  # noqa: E402
from src.errors import run_cli  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", required=True, help="folder for train.txt and heldout.txt")
    parser.add_argument("--corpus", nargs="*", help="your own corpus files or folders")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.makedirs(args.output, exist_ok=True)
    inputs = args.corpus
    if not inputs:
        inputs = [os.path.join(args.output, "stdlib_docstrings.txt")]
        write_stdlib_corpus(inputs[0])
    counts = split_heldout(inputs, os.path.join(args.output, "train.txt"),
                           os.path.join(args.output, "heldout.txt"))
    logging.info("corpus documents: %s", counts)


if __name__ == "__main__":
    run_cli(main)
