"""Score predictions with the official metrics (and evaluate a checkpoint: --model_dir).

  python run_eval.py --task squad_v1 --data dev-v1.1.json --predictions predictions.json
  python run_eval.py --task squad_v2 --data dev-v2.0.json --predictions predictions.json \\
      [--na_prob_file null_odds.json] [--na_prob_thresh 1.0]
  python run_eval.py --task cmrc2018 --data cmrc2018_dev.json --predictions predictions.json
  python run_eval.py --task ner --data gold.conll --predictions predicted.conll
  python run_eval.py --task ner --data conlleval_output.txt
  python run_eval.py --task squad_v1 --model_dir outputs/squad_v1/model_best --data dev-v1.1.json
  python run_eval.py --task squad_v1 --exported exports/squad.mindir --data dev-v1.1.json

stdout is exactly what the official script prints: evaluate-v1.1.py's one-line JSON,
evaluate-v2.0.py's JSON with indent 2, cmrc2018_evaluate.py's one-line JSON (scores as
"%.3f" strings, then TOTAL, SKIP, FILE). For NER it is the JSON of entity-level precision,
recall and F1 (fractions, as seqeval computes them) for the micro average and per type,
with support (gold entity counts). Notes (questions without a prediction, which score 0;
a data file of another version) go to stderr, the v2.0 "Missing prediction" lines too.

Predictions files: SQuAD/CMRC, a JSON object mapping question id to answer text ("" for
no answer). NER, CoNLL-style text: one token per line with whitespace-separated columns
and a blank line between sentences ("-DOCSTART-" lines are sentence breaks). With
--predictions, the tags are the last column of each file (the same tokens, in the same
order); without it, --data holds both, gold tag then predicted tag as the last two
columns, as conlleval reads them.
"""
import argparse
import json
import os
import sys
from pathlib import Path

from src.cluster.modelarts import add_modelarts_arguments, modelarts_session
from src.errors import UserError, run_cli
from src.files import write_text_atomic

NOTED_IDS = 10  # per-question lines printed before only the count is given
NER_TASKS = {"ner", "cluener", "msra_ner", "conll2003"}
FILE_TASKS = ["squad_v1", "squad_v2", "cmrc2018", "drcd", *sorted(NER_TASKS)]


def note(message: str) -> None:
    print(message, file=sys.stderr)


def note_missing(missing: list[str], total: int, line: str, predictions: str) -> None:
    """The official per-question line for the first few missing ids, then how many there are."""
    for qid in missing[:NOTED_IDS]:
        note(line.format(qid))
    if missing:
        more = f" ({len(missing) - NOTED_IDS} more not listed)" if len(missing) > NOTED_IDS else ""
        note(f"{predictions}: no prediction for {len(missing)} of {total} questions; "
             f"each scores 0{more}")


def note_unknown(unknown: list[str], data: str, predictions: str) -> None:
    if unknown:
        note(f"{predictions}: {len(unknown)} prediction ids are not questions of {data} "
             f"(ignored), e.g. {unknown[0]!r}")


# ---------------------------------------------------------------- SQuAD and CMRC

def score_squad(args, version: int) -> str:
    from src.data.json_files import load_json
    from src.metrics import squad
    data_json = load_json(args.data)
    dataset = squad.check_dataset(data_json, args.data)
    predictions = squad.check_predictions(load_json(args.predictions), args.predictions)
    total = len(list(squad.iter_questions(dataset)))
    if version == 1:
        if data_json.get("version") != "1.1":
            note(f"Evaluation expects v-1.1, but got dataset with v-{data_json.get('version')}")
        unanswerable = set(squad.unanswerable_ids(dataset))
        if unanswerable:
            note(f"{args.data}: {len(unanswerable)} questions have no gold answers (SQuAD v2.0 "
                 "unanswerable ones); they are left out of the v1.1 scores (--task squad_v2 scores them)")
        missing = [qid for qid in squad.missing_ids(dataset, predictions) if qid not in unanswerable]
        note_missing(missing, total - len(unanswerable), "Unanswered question {} will receive score 0.",
                     args.predictions)
        note_unknown(squad.unknown_ids(dataset, predictions), args.data, args.predictions)
        return json.dumps(squad.evaluate_v1(dataset, predictions))
    na_probs = None
    if args.na_prob_file:
        na_probs = squad.check_na_probs(load_json(args.na_prob_file), args.na_prob_file)
    note_missing(squad.missing_ids(dataset, predictions), total, "Missing prediction for {}",
                 args.predictions)
    note_unknown(squad.unknown_ids(dataset, predictions), args.data, args.predictions)
    result = squad.evaluate_v2(dataset, predictions, na_probs, args.na_prob_thresh,
                               args.na_prob_file or "na_prob file")
    return json.dumps(result, indent=2)


def score_cmrc(args) -> str:
    from src.data.json_files import load_json
    from src.metrics import cmrc, squad
    data = load_json(args.data)
    predictions = squad.check_predictions(load_json(args.predictions), args.predictions)
    result = cmrc.evaluate(data, predictions, args.data)
    note_missing(cmrc.missing_ids(data, predictions, args.data), result["TOTAL"],
                 "Unanswered question: {}", args.predictions)
    known = {qid for qid, _ in cmrc.iter_questions(data, args.data)}
    note_unknown([qid for qid in predictions if qid not in known], args.data, args.predictions)
    return json.dumps(cmrc.official_output(result, args.predictions))


# ---------------------------------------------------------------- NER (CoNLL-style files)

def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def read_conll(path: str) -> list[list[tuple[int, list[str]]]]:
    """Sentences of (line number, columns); blank and -DOCSTART- lines end a sentence."""
    from src.data.tasks.ner import conll_blocks
    sentences = [block for _, block in conll_blocks(path)]
    if sentences and sentences[0][0][1][0][:1] in ("{", "[") and _is_json(Path(path).read_text(encoding="utf-8")):
        raise UserError(f"{path}: looks like JSON; expected CoNLL-style text (one token and its tags "
                        "per line, a blank line between sentences)")
    return sentences


def ner_tags(args) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted tag sequences from one conlleval-style file or two aligned files."""
    gold_sentences = read_conll(args.data)
    if not args.predictions:
        for sentence in gold_sentences:
            for number, columns in sentence:
                if len(columns) < 2:
                    raise UserError(f"{args.data}: line {number}: one column; expected the gold and the "
                                    "predicted tag as the last two columns (or pass --predictions)")
        return ([[columns[-2] for _, columns in s] for s in gold_sentences],
                [[columns[-1] for _, columns in s] for s in gold_sentences])
    pred_sentences = read_conll(args.predictions)
    if len(pred_sentences) != len(gold_sentences):
        raise UserError(f"{args.predictions}: {len(pred_sentences)} sentences, but {args.data} has "
                        f"{len(gold_sentences)}; expected the same sentences in the same order")
    for gold, pred in zip(gold_sentences, pred_sentences):
        if len(gold) != len(pred):
            raise UserError(f"{args.predictions}: the sentence at line {pred[0][0]} has {len(pred)} tokens, "
                            f"but its match in {args.data} (line {gold[0][0]}) has {len(gold)}")
        for (gold_line, gold_columns), (pred_line, pred_columns) in zip(gold, pred):
            if len(pred_columns) > 1 and len(gold_columns) > 1 and pred_columns[0] != gold_columns[0]:
                raise UserError(f"{args.predictions}: line {pred_line}: token {pred_columns[0]!r}, but "
                                f"{args.data} line {gold_line} has {gold_columns[0]!r}; expected the same tokens")
    return ([[columns[-1] for _, columns in s] for s in gold_sentences],
            [[columns[-1] for _, columns in s] for s in pred_sentences])


def score_ner(args) -> str:
    from src.metrics.ner import entity_scores
    gold, predicted = ner_tags(args)
    odd = sorted({tag for sentence in gold + predicted for tag in sentence
                  if tag != "O" and tag[:2] not in ("B-", "I-", "E-", "S-")})
    if odd:
        note(f"{len(odd)} tags are neither O nor B-/I-/E-/S-<type> (read as seqeval does), "
             f"e.g. {odd[0]!r}")
    return json.dumps(entity_scores(gold, predicted), indent=2)


# ---------------------------------------------------------------- command line

def score_predictions(args) -> str:
    """The scores of a predictions file as the text the official script prints."""
    from src.metrics.classification import canonical_task
    try:
        task = canonical_task(args.task)
    except UserError:
        task = args.task
    if task not in FILE_TASKS:
        raise UserError(f"--task {args.task}: scoring a predictions file is available for "
                        f"{', '.join(FILE_TASKS)}")
    if task in NER_TASKS:
        return score_ner(args)
    if not args.predictions:
        raise UserError(f"--predictions: required for --task {args.task} (a JSON object mapping "
                        "question id to answer text)")
    if task in ("cmrc2018", "drcd"):
        return score_cmrc(args)
    return score_squad(args, version=1 if task == "squad_v1" else 2)


def evaluate_model(args) -> str:
    """Model-prediction mode: run --model_dir on the raw --data file, write the predictions into
    --output_dir and score them exactly as the file-scoring mode does."""
    from src.data.tokenization import load_tokenizer
    from src.models import load_pretrained
    from src.tasks.finetune import read_task_spec
    from src.tasks.registry import task_class
    from src.training.distributed import setup_device

    setup_device(args.device_target)
    spec = read_task_spec(args.model_dir)
    task = task_class(spec["task"], args.model_dir)(spec)
    model = load_pretrained(args.model_dir, head=task.head, **task.model_overrides())
    return predict_and_score(args, spec, model, load_tokenizer(args.model_dir),
                             os.path.join(args.model_dir, "eval"))


def predict_and_score(args, spec: dict, model, tokenizer, default_output: str) -> str:
    """Predict the raw --data file with a model (a Cell or an exported graph), write the
    predictions and score them exactly as the file-scoring mode does."""
    from src.tasks.registry import TASKS, task_class

    if args.task not in TASKS:
        spec["dataset"] = args.task  # e.g. mnli_mm scored by an mnli model
    task = task_class(spec["task"], args.exported or args.model_dir)(spec)
    evaluation = task.evaluation(tokenizer, args.data, args.batch_size)
    scores = evaluation(model)
    output_dir = args.output_dir or default_output
    written = evaluation.write_predictions(output_dir)
    note(f"predictions: {', '.join(written)}")
    if spec["task"] == "squad":
        null_odds = [path for path in written if path.endswith("null_odds.json")]
        scored = argparse.Namespace(task=spec["dataset"], data=args.data, predictions=written[0],
                                    na_prob_file=null_odds[0] if null_odds else None,
                                    na_prob_thresh=args.na_prob_thresh)
        return score_predictions(scored)
    if spec["task"] == "ner":
        return score_ner(argparse.Namespace(data=written[0], predictions=None))
    return json.dumps({key.removeprefix("eval_"): value for key, value in scores.items()}, indent=2)


def evaluate_exported(args) -> str:
    """Exported-file mode: as --model_dir, with the graph (MINDIR or ONNX) and the task record,
    labels and tokenizer export.py wrote beside it."""
    from src.data.tokenization import load_tokenizer
    from src.deploy.runtime import load_exported
    from src.training.distributed import setup_device

    setup_device(args.device_target)
    exported = load_exported(args.exported)
    spec = exported.record.get("task")
    if not spec:
        raise UserError(f"{args.exported}: exported from a model without task.json; expected an "
                        "export of a fine-tuned checkpoint")
    return predict_and_score(args, dict(spec), exported, load_tokenizer(exported.folder),
                             os.path.splitext(args.exported)[0] + "_eval")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help=f"one of {', '.join(FILE_TASKS)} for file scoring")
    parser.add_argument("--data", required=True,
                        help="the gold file: SQuAD/CMRC JSON, or CoNLL-style text for NER")
    parser.add_argument("--predictions",
                        help="predictions to score: JSON {question id: answer text}, or CoNLL-style "
                             "text whose last column is the predicted tag (NER)")
    parser.add_argument("--model_dir", help="a fine-tuned model directory to evaluate on --data")
    parser.add_argument("--exported", help="an export.py file (.mindir or .onnx) of a fine-tuned model "
                                           "to evaluate on --data, as --model_dir does")
    parser.add_argument("--na_prob_file", help="squad_v2: JSON {question id: no-answer probability}")
    parser.add_argument("--na_prob_thresh", type=float, default=1.0,
                        help="squad_v2: predict no answer when the no-answer probability is above "
                             "this (default 1.0)")
    parser.add_argument("--out", help="also write the scores (the printed JSON) to this file")
    parser.add_argument("--output_dir", help="--model_dir / --exported mode: where predictions go "
                                             "(default <model_dir>/eval, <OUT>_eval)")
    parser.add_argument("--batch_size", type=int, default=32, help="--model_dir / --exported mode: rows per prediction batch "
                             "(a static export: its own batch size)")
    parser.add_argument("--device_target", default="CPU", help="--model_dir / --exported mode: CPU, GPU or Ascend")
    add_modelarts_arguments(parser)
    args = parser.parse_args()
    if args.model_dir and args.exported:
        raise UserError("--model_dir and --exported: give one model to evaluate")
    with modelarts_session(args, data=("data", "predictions", "na_prob_file"),
                           load=("model_dir", "exported"), output=("output_dir",),
                           output_files=("out",)):
        if args.exported:
            text = evaluate_exported(args)
        elif args.model_dir:
            text = evaluate_model(args)
        else:
            text = score_predictions(args)
        if args.out:
            write_text_atomic(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    run_cli(main)
