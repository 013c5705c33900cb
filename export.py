"""Export a model directory to MINDIR, ONNX or AIR, with a JSON sidecar and its tokenizer files.

  python export.py --model_dir outputs/squad_v1/model_best --file_format MINDIR --file_name exports/squad
  python export.py --model_dir models/bert_base --head masked_lm --file_format ONNX \\
      --file_name exports/bert_mlm --batch_size 8 --seq_length 128
  python export.py --model_dir outputs/msra/model_best --file_format MINDIR --file_name exports/ner --dynamic
  python export.py --model_dir outputs/conll_spans/model_best --file_format ONNX --file_name exports/spans \\
      --max_entity_length 64 --max_mention_length 16

Writes OUT.mindir|.onnx|.air and OUT.json (family, head, labels, input and output names,
dtypes and shapes, CRF transitions) and the tokenizer files beside them; predict.py and
run_eval.py --exported need nothing else. A fine-tuned directory's task.json decides the
head, the labels and the default sequence length; otherwise --head (default: the head
its config.yaml records, or the bare backbone). A LUKE graph also takes the four entity
inputs (entity ids, mask, token types, mention positions), sized by --max_entity_length and
--max_mention_length. The graph is the plain-ops model, never this host's fused CPU
kernels. AIR is written only on Ascend. With --enable_modelarts (the zoo's keys, README
"ModelArts") the model is copied from checkpoint_url and the files go to train_url.
"""
import argparse
import logging

from src.cluster.modelarts import add_modelarts_arguments, modelarts_session
from src.errors import UserError, run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", default="",
                        help="a model directory (pretrained or fine-tuned); with --enable_modelarts, "
                             "relative to load_path (empty: load_path itself, checkpoint_url's copy)")
    parser.add_argument("--file_format", default="MINDIR", type=str.upper,
                        help="MINDIR (default), ONNX, or AIR (Ascend only)")
    parser.add_argument("--file_name", required=True,
                        help="output path without extension (OUT -> OUT.mindir); with --enable_modelarts "
                             "written into output_path and copied to train_url")
    parser.add_argument("--batch_size", type=int, default=1, help="static batch size (default 1)")
    parser.add_argument("--seq_length", type=int,
                        help="static sequence length (default: the fine-tuning features' length, else 128)")
    parser.add_argument("--dynamic", action="store_true",
                        help="MINDIR with free batch and sequence dimensions")
    parser.add_argument("--head", help="head to export from a pretrained directory (e.g. masked_lm)")
    parser.add_argument("--max_entity_length", type=int,
                        help="LUKE: static entities per row (default: the fine-tuning features', "
                             "else config.yaml's)")
    parser.add_argument("--max_mention_length", type=int,
                        help="LUKE: static tokens per entity mention (default as --max_entity_length)")
    parser.add_argument("--device_target", default="CPU", help="CPU, GPU or Ascend (AIR needs Ascend)")
    add_modelarts_arguments(parser)
    args = parser.parse_args()
    if not args.model_dir and not args.enable_modelarts:
        raise UserError("--model_dir: expected a model directory")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import mindspore as ms
    from src.deploy.exporter import ExportRequest, export_model
    ms.set_context(device_target=args.device_target)
    with modelarts_session(args, load=("model_dir",), output_files=("file_name",)):
        request = ExportRequest(args.model_dir, args.file_format, args.file_name, args.batch_size,
                                args.seq_length, args.dynamic, args.head, args.max_entity_length,
                                args.max_mention_length)
        for path in export_model(request):
            logging.info("wrote %s", path)


if __name__ == "__main__":
    run_cli(main)
