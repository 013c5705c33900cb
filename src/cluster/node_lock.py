"""Once per node: the first process to create a lock file does a step, the others wait for it."""
import os
import time
from typing import Callable

from src.errors import UserError
from src.files import write_text_atomic


def once_per_node(lock_dir: str, name: str, action: Callable[[], None], timeout_s: float,
                  poll_s: float = 0.2) -> bool:
    """Run `action` if this process creates `name`.lock first (O_EXCL, atomic on a local disk);
    otherwise wait up to `timeout_s` for its `name`.done. True in the process that ran it."""
    os.makedirs(lock_dir, exist_ok=True)
    lock, done, failed = (os.path.join(lock_dir, f"{name}.{kind}") for kind in ("lock", "done", "failed"))
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        _wait(lock, done, failed, name, timeout_s, poll_s)
        return False
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    try:
        action()
    except BaseException as err:
        write_text_atomic(failed, f"{type(err).__name__}: {err}")
        raise
    write_text_atomic(done, "done\n")
    return True


def _wait(lock: str, done: str, failed: str, name: str, timeout_s: float, poll_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(done):
        if os.path.exists(failed):
            with open(failed, encoding="utf-8") as f:
                raise UserError(f"{name}: the process doing it on this node failed ({f.read()})")
        owner = _owner(lock)
        if owner and not _alive(owner):
            raise UserError(f"{name}: process {owner}, which was doing it on this node, is gone "
                            f"(remove {lock} to retry)")
        if time.monotonic() > deadline:
            raise UserError(f"{name}: waited {timeout_s:.0f} s for process {owner or '?'} on this "
                            f"node to finish it ({lock})")
        time.sleep(poll_s)


def _owner(lock: str) -> int:
    try:
        with open(lock, encoding="utf-8") as f:
            return int(f.read() or 0)
    except (OSError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
