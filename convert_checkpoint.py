"""Convert checkpoints: HF directory <-> project model directory; model zoo .ckpt -> project.

  python convert_checkpoint.py --input hf_bert_dir --output models/bert_base
  python convert_checkpoint.py --input models/bert_base --output hf_out
  python convert_checkpoint.py --input zoo_bert.ckpt --config configs/models/bert_base.yaml \
      --vocab vocab.txt --output models/bert_base
"""
import argparse
import logging

from src.errors import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True,
                        help="HF directory, project model directory, or model zoo .ckpt")
    parser.add_argument("--output", required=True, help="directory to write")
    parser.add_argument("--format", default="safetensors", choices=["safetensors", "ckpt"],
                        help="weights format of a project model directory")
    parser.add_argument("--config", help="model config YAML (needed for a model zoo .ckpt)")
    parser.add_argument("--vocab", help="vocab.txt to put beside a converted zoo checkpoint")
    parser.add_argument("--allow_pickle", action="store_true",
                        help="read pytorch_model.bin with torch.load(weights_only=True)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from src.models.conversion import convert
    for note in convert(args.input, args.output, args.format, args.config, args.vocab,
                        args.allow_pickle, args.overwrite):
        logging.info(note)
    logging.info("wrote %s", args.output)


if __name__ == "__main__":
    run_cli(main)
