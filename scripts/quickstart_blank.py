"""Quickstart: a held-out sentence with one whole-word token hidden behind the mask token, for
the fill-in-the-blank prediction of the exported graph (written to --output, the hidden word
beside it as blank_answer.txt)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.data.tokenization import load_tokenizer  # noqa: E402
from src.errors import UserError, run_cli  # noqa: E402
from src.files import write_text_atomic  # noqa: E402

WORDS = (8, 30)  # a sentence long enough to give context, short enough to read


def masked_sentence(tokenizer, lines):
    """The first sentence of WORDS words with a lowercase middle word that is one vocabulary token."""
    for line in lines:
        words = line.split()
        if not WORDS[0] <= len(words) <= WORDS[1]:
            continue
        for index in range(len(words) // 2, len(words) - 1):
            word = words[index]
            if word.isalpha() and word.islower() and len(word) > 3 and len(tokenizer.tokenize(word)) == 1:
                hidden = words[:index] + [tokenizer.mask_token] + words[index + 1:]
                return " ".join(hidden), word
    raise UserError("no held-out sentence of 8 to 30 words has a whole-word token to hide")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--heldout", required=True, help="held-out plain text, one sentence a line")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    with open(args.heldout, encoding="utf-8") as f:
        sentence, word = masked_sentence(load_tokenizer(args.model_dir), f)
    write_text_atomic(args.output, sentence + "\n")
    write_text_atomic(os.path.join(os.path.dirname(args.output), "blank_answer.txt"), word + "\n")


if __name__ == "__main__":
    run_cli(main)
