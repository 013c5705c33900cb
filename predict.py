"""Predict raw inputs with an exported graph (.mindir / .onnx from export.py) or a model directory.

  python predict.py --model exports/squad.mindir --input questions.jsonl --output answers.jsonl
  python predict.py --model exports/sst2.onnx --input sentences.txt --output labels.jsonl
  python predict.py --model outputs/conll/model_best --input sentences.txt --output tags.jsonl
  python predict.py --model exports/spans.onnx --input spans.jsonl --output entities.jsonl

Inputs by head: question answering, a SQuAD JSON file or JSON lines of {"question", "context"
(, "id")}; sequence classification, JSON lines of {"text" (, "text_pair")} or text lines (a tab
between a pair); NER, JSON lines of {"tokens": [...]} or text lines split at whitespace;
masked LM, JSON lines of {"text"} or text lines holding the mask token; LUKE's entity heads,
JSON lines of {"text", "entity_spans": [[start, end], ...]} (character offsets: one span for
entity_classification, head and tail for entity_pair_classification, the candidate spans for
entity_span_classification). The output has one JSON line per input: the answer and its
probability, the label and the probabilities of every label, the tags (Viterbi decoding with a
CRF), the top tokens at each mask, the entity's types, the relation, or a label per span. MINDIR runs through
mindspore.load + nn.GraphCell, ONNX through onnxruntime (requirements-deploy.txt).
"""
import argparse
import json

from src.errors import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="OUT.mindir, OUT.onnx, or a model directory")
    parser.add_argument("--input", required=True, help="the raw inputs (see above)")
    parser.add_argument("--output", required=True, help="JSON lines of predictions to write")
    parser.add_argument("--head", help="a model directory without task.json: the head to predict with")
    parser.add_argument("--batch_size", type=int, default=32,
                        help="rows per batch (a static export: its own batch size)")
    parser.add_argument("--device_target", default="CPU", help="CPU, GPU or Ascend")
    args = parser.parse_args()
    import mindspore as ms
    from src.deploy.predictions import open_model, predict_file
    from src.files import write_text_atomic
    ms.set_context(device_target=args.device_target)
    results = predict_file(open_model(args.model, args.head), args.input, args.batch_size)
    text = "".join(json.dumps(result, ensure_ascii=False) + "\n" for result in results)
    print(f"wrote {write_text_atomic(args.output, text)} ({len(results)} predictions)")


if __name__ == "__main__":
    run_cli(main)
