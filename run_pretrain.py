"""Pretrain a BERT-family model on MindRecord written by `create_data.py pretrain`.

  python run_pretrain.py --config configs/tasks/pretrain_bert.yaml data_dir=data/wiki \
      output_dir=outputs/bert train_steps=100000

Starting the same command again resumes from output_dir/model_last (--no_resume starts
fresh). Under msrun each rank trains on its own shard; only rank 0 writes. A ModelArts start
file: the web form's parameters arrive as --key=value (README "ModelArts").
"""
import argparse
import logging
import os

from src.errors import UserError, run_cli


def build_model_for(config, manifest, source: str):
    """Random init from model_config (sized to the data's tokenizer), or continued
    pretraining from model_dir."""
    from src.data.tokenization import load_tokenizer
    from src.models import build_model, load_pretrained
    from src.models.config import load_model_config
    vocab = manifest["masking_spec"]["vocab_size"]
    pad_id = load_tokenizer(manifest["tokenizer"]["model_dir"]).pad_token_id
    entities = manifest.get("entity_vocab", {}).get("size")  # LUKE data only
    if config.model_dir:
        model = load_pretrained(config.model_dir, head="pretraining")
        if model.config.vocab_size < vocab or model.config.pad_token_id != pad_id:
            raise UserError(f"{config.model_dir}: vocab_size {model.config.vocab_size} and "
                            f"pad_token_id {model.config.pad_token_id} do not fit the data's "
                            f"tokenizer ({vocab} tokens, pad id {pad_id})")
        if entities and (model.config.model_type != "luke"
                         or model.config.entity_vocab_size < entities):
            raise UserError(f"{config.model_dir}: the data has LUKE entities ({entities} in its "
                            f"entity vocabulary); expected a luke model with at least as many")
        return model
    if not config.model_config:
        raise UserError(f"{source}: set model_config (a configs/models YAML) or model_dir")
    sizes = [f"vocab_size={vocab}", f"pad_token_id={pad_id}"]
    if entities:
        sizes.append(f"entity_vocab_size={entities}")
    model_config = load_model_config(config.model_config, sizes)
    if bool(entities) != (model_config.model_type == "luke"):
        raise UserError(f"{config.model_config}: model_type {model_config.model_type} does not "
                        f"fit data written with objective {manifest['options'].get('objective')}")
    return build_model(model_config, "pretraining")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="configs/tasks/pretrain_<family>.yaml")
    parser.add_argument("--no_resume", action="store_true", help="ignore output_dir/model_last")
    parser.add_argument("overrides", nargs="*", help="key=value settings over the config")
    from src.cluster.modelarts import ModelArtsJob, parse_runner_args
    args = parse_runner_args(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from src.config import load_config
    from src.data.pretraining.records import read_manifest
    from src.tasks.pretraining import Evaluator, MindRecordSource, loss_function, masked_tokens
    from src.training.config import PretrainConfig
    from src.training.distributed import setup_device
    from src.training.trainer import Trainer

    config = load_config(PretrainConfig, args.config, args.overrides)
    job = ModelArtsJob(config)
    if not config.data_dir and not config.enable_modelarts:
        raise UserError(f"{args.config}: set data_dir (a folder from create_data.py pretrain)")
    rank, world = setup_device(config.device_target)
    job.start(config, world, data=("data_dir", "eval_data_dir"), load=("model_dir",),
              output=("output_dir",))
    import mindspore as ms
    ms.set_seed(config.seed)
    manifest = read_manifest(config.data_dir)
    model = build_model_for(config, manifest, args.config)
    source = MindRecordSource(config.data_dir, config.batch_size, config.seed, rank, world)
    evaluate = None
    if config.eval_data_dir:
        evaluate = Evaluator(model, config.eval_data_dir, config.batch_size, config.eval_batches)
    trainer = Trainer(model, loss_function(model), source, config, rank, world,
                      tokenizer_dir=manifest["tokenizer"]["model_dir"], evaluate=evaluate,
                      tokens_per_batch=masked_tokens, on_checkpoint=job.publish)
    state = trainer.train(resume=not args.no_resume)
    if rank == 0:
        job.publish()
        out = config.output_dir
        logging.info("done: step %d, %d skipped steps", state["step"], state["skipped_steps"])
        logging.info("model directory: %s", os.path.realpath(os.path.join(out, "model_last")))
        logging.info("metrics: %s, plot: %s", os.path.join(out, "metrics.jsonl"),
                     os.path.join(out, "metrics.png"))


if __name__ == "__main__":
    run_cli(main)
