"""Device and data-parallel setup: MindSpore's own launcher (msrun) and collectives."""
import logging
import os
from typing import Tuple

import mindspore as ms

logger = logging.getLogger(__name__)

# Set by msrun for each worker, or by the model zoo's rank-table scripts on Ascend.
LAUNCHER_VARIABLES = ("MS_WORKER_NUM", "RANK_TABLE_FILE")


def setup_device(device_target: str) -> Tuple[int, int]:
    """Select the device; under msrun (or an HCCL rank table) join the data-parallel group.

    Returns (rank, world size); gradients are averaged across the group by the trainer.
    """
    ms.set_context(device_target=device_target)
    if device_target != "CPU" and os.environ.get("DEVICE_ID"):  # set by a rank-table launch, or msrun
        ms.set_context(device_id=int(os.environ["DEVICE_ID"]))
    if device_target == "CPU":
        setup_cpu_runtime(os.cpu_count() or 1)
    if not any(os.environ.get(v) for v in LAUNCHER_VARIABLES):
        return 0, 1
    from mindspore.communication import get_group_size, get_rank, init
    init()
    rank, world = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL,
                                 gradients_mean=True, device_num=world)
    logger.info("rank %d of %d on %s", rank, world, device_target)
    return rank, world


def setup_cpu_runtime(threads: int) -> None:
    """CPU kernel threads (once per process): MindSpore's default is 25 whatever the machine."""
    ms.device_context.cpu.op_tuning.threads_num(threads)


def synchronize(world: int) -> None:
    """Wait for every rank (so no worker exits while rank 0 still writes its last checkpoint;
    msrun's scheduler otherwise sees a finished worker's peer as timed out)."""
    if world > 1:  # an all-reduce of one number: CPU collectives have no Barrier kernel
        from mindspore import Tensor, ops
        ops.AllReduce()(Tensor([1.0], ms.float32)).asnumpy()
