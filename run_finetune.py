"""Fine-tune a model directory on a task: SQuAD/CMRC2018, NER (softmax or CRF), GLUE/CLUE
classification and regression, RACE multiple choice.

  python create_data.py squad --input train-v1.1.json --model_dir models/bert_base --output data/squad_train
  python run_finetune.py --config configs/tasks/squad_v1.yaml --model_dir models/bert_base \
      data_dir=data/squad_train eval_file=dev-v1.1.json output_dir=outputs/squad

Evaluates on eval_file every eval_steps with the official metric and keeps the best checkpoint
(output_dir/model_best); starting the same command again resumes from output_dir/model_last.
A ModelArts start file: the web form's parameters arrive as --key=value (README "ModelArts").
"""
import argparse
import functools
import json
import logging
import os

from src.errors import UserError, run_cli


def prepare_run(config, source: str, rank: int, world: int):
    """Task, model, batches and evaluation of a fine-tuning run, checked against each other."""
    from src.data.tasks.task_records import read_task_manifest
    from src.data.tokenization import load_tokenizer
    from src.metrics.classification import primary_metric
    from src.models import load_pretrained
    from src.tasks.finetune import TaskSource, steps_for_epochs, task_spec
    from src.tasks.registry import task_class

    cls = task_class(config.task, source)
    for key in ("model_dir", "data_dir"):
        if not getattr(config, key):
            raise UserError(f"{source}: set {key}")
    manifest = read_task_manifest(config.data_dir, config.task)
    tokenizer = load_tokenizer(config.model_dir)
    built_with = manifest.get("tokenizer", {}).get("fingerprint")
    if built_with and built_with != tokenizer.fingerprint():
        raise UserError(f"{config.data_dir}: features were built with another tokenizer than "
                        f"{config.model_dir}'s (rebuild them with --model_dir {config.model_dir})")
    spec = task_spec(config, manifest)
    task = cls(spec)
    model = load_pretrained(config.model_dir, head=task.head, **task.model_overrides())
    check_length(manifest, model.config, config.data_dir, config.model_dir)
    batches = TaskSource(config.data_dir, config.batch_size, config.seed, list(task.columns),
                         task.prepare, rank, world)
    if config.num_train_epochs:
        config.train_steps = steps_for_epochs(config.num_train_epochs, batches.batches_per_epoch,
                                              config.accumulation_steps)
    if config.warmup_ratio is not None:
        config.warmup_steps = int(config.warmup_ratio * config.train_steps)
    if config.save_total_limit:
        config.save_checkpoint_num = config.save_total_limit
    evaluation = task.evaluation(tokenizer, config.eval_file, config.eval_batch_size) if config.eval_file else None
    if evaluation and not config.metric_for_best_model:
        config.metric_for_best_model = primary_metric(spec["dataset"] or config.task)
    return task, model, batches, evaluation, spec


def check_length(manifest, model_config, data_dir: str, model_dir: str) -> None:
    """Features longer than the model's position table fail here, not as an index error in a kernel."""
    length = manifest["columns"]["input_ids"]["shape"][-1]
    limit = model_config.max_position_embeddings
    if model_config.position_embedding_type == "padding_offset":  # RoBERTa counts from pad_token_id + 1
        limit -= model_config.pad_token_id + 1
    if length > limit:
        raise UserError(f"{data_dir}: features of {length} tokens, but {model_dir} has {limit} positions "
                        f"(rebuild them with --max_seq_length {limit} or less)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="configs/tasks/<task>.yaml")
    parser.add_argument("--model_dir", help="model directory to start from (overrides the config)")
    parser.add_argument("--no_resume", action="store_true", help="ignore output_dir/model_last")
    parser.add_argument("overrides", nargs="*", help="key=value settings over the config")
    from src.cluster.modelarts import ModelArtsJob, parse_runner_args
    args = parse_runner_args(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from src.config import load_config
    from src.tasks.finetune import TASK_FILE, FinetuneConfig
    from src.training.distributed import setup_device
    from src.training.trainer import Trainer

    overrides = args.overrides + ([f"model_dir={args.model_dir}"] if args.model_dir else [])
    config = load_config(FinetuneConfig, args.config, overrides)
    job = ModelArtsJob(config)
    rank, world = setup_device(config.device_target)
    job.start(config, world, data=("data_dir", "eval_file"), load=("model_dir",),
              output=("output_dir",))
    import mindspore as ms
    ms.set_seed(config.seed)
    task, model, batches, evaluation, spec = prepare_run(config, args.config, rank, world)
    trainer = Trainer(model, task.loss_function(model), batches, config, rank, world,
                      tokenizer_dir=config.model_dir,
                      evaluate=functools.partial(evaluation, model) if evaluation else None,
                      model_files={TASK_FILE: json.dumps(spec, indent=2, ensure_ascii=False)},
                      on_checkpoint=job.publish)
    state = trainer.train(resume=not args.no_resume)
    if rank != 0:
        return
    out = config.output_dir
    logging.info("done: step %d, %d skipped steps", state["step"], state["skipped_steps"])
    if evaluation:
        model.set_train(False)
        scores = evaluation(model)
        written = evaluation.write_predictions(out)
        logging.info("final model%s: %s", " (best)" if config.load_best_model_at_end else "",
                     json.dumps(scores))
        logging.info("predictions: %s", ", ".join(written))
    if state["best_step"] is not None:
        logging.info("best checkpoint: %s (%s = %s at step %d)",
                     os.path.realpath(os.path.join(out, "model_best")),
                     config.metric_for_best_model, state["best_metric"], state["best_step"])
    logging.info("last checkpoint: %s", os.path.realpath(os.path.join(out, "model_last")))
    logging.info("metrics: %s, plot: %s", os.path.join(out, "metrics.jsonl"),
                 os.path.join(out, "metrics.png"))
    job.publish()


if __name__ == "__main__":
    run_cli(main)
