"""Start a runner's data-parallel workers: through msrun on one node or many (the same command
on every node, only the node rank differs), or one process per local device of an HCCL rank table.

  python -m src.cluster.launch RUNNER [options] WORKERS DEVICE_TARGET CONFIG [runner arguments]

Options fall back to environment variables: --local_workers LOCAL_WORKERS (or WORKERS / NODES),
--node_rank NODE_RANK, --master_addr MASTER_ADDR, --master_port MASTER_PORT, --cluster_time_out
CLUSTER_TIME_OUT, --log_dir LOG_DIR. With RANK_TABLE_FILE set, the table decides (SERVER_ID
and HCCN_CONF pick this server). --dry_run prints the plan as JSON and starts nothing.
Exit status 0 when every worker succeeds; otherwise non-zero, naming the failing ranks' logs.
"""
import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Mapping, Optional

from src.cluster.rank_table import HCCN_CONF, device_environments, find_server, read_rank_table
from src.errors import UserError, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MSRUN_PORT = 8118  # msrun's default; every node must use the same
FAILURE = re.compile(r"Traceback|^error:|ERROR\] ME|Error\b.*exit", re.M)


@dataclass
class Topology:
    """Where this node's workers sit in the job."""

    workers: int
    local_workers: int
    node_rank: int
    master_addr: str
    master_port: int
    cluster_time_out: int


@dataclass
class Process:
    """One worker process of a rank table: its variables, command and log."""

    rank: int
    env: Dict[str, str]
    command: List[str]
    log: str


def _int(value: Optional[str], name: str) -> Optional[int]:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name} {value!r}: expected an integer") from None


def topology(args: argparse.Namespace, env: Mapping[str, str]) -> Topology:
    """The msrun layout from the options, else the environment; multi-node needs a master address
    and this node's rank."""
    workers = _int(args.workers, "WORKERS")
    if workers is None or workers < 1:
        raise UserError(f"WORKERS {args.workers!r}: expected the total number of workers (>= 1)")
    local = _int(args.local_workers or env.get("LOCAL_WORKERS"), "LOCAL_WORKERS")
    nodes = _int(env.get("NODES"), "NODES")
    if local is None and nodes:
        if workers % nodes:
            raise UserError(f"NODES {nodes}: WORKERS {workers} do not split evenly over them")
        local = workers // nodes
    local = workers if local is None else local
    if not 1 <= local <= workers or workers % local:
        raise UserError(f"LOCAL_WORKERS {local}: expected a divisor of WORKERS {workers} "
                        "(each node runs as many)")
    node_rank = _int(args.node_rank or env.get("NODE_RANK"), "NODE_RANK")
    master = args.master_addr or env.get("MASTER_ADDR")
    port = _int(args.master_port or env.get("MASTER_PORT"), "MASTER_PORT")
    timeout = _int(args.cluster_time_out or env.get("CLUSTER_TIME_OUT"), "CLUSTER_TIME_OUT")
    if local == workers:
        node_rank, master = 0, master or "127.0.0.1"
        port = port or 8000 + random.randrange(2000)  # a free one is likely; jobs on one host differ
    else:
        nodes = workers // local
        if not master:
            raise UserError(f"MASTER_ADDR: required when this node runs {local} of {workers} "
                            "workers (the address of node 0, the same on every node)")
        if node_rank is None or not 0 <= node_rank < nodes:
            raise UserError(f"NODE_RANK {node_rank}: expected this node's rank, 0..{nodes - 1}")
        port = port or MSRUN_PORT
    return Topology(workers, local, node_rank, master, port, 600 if timeout is None else timeout)


def runner_command(args: argparse.Namespace) -> List[str]:
    """What each worker runs: the runner on the config with the device target and the rest."""
    return [os.path.join(ROOT, args.runner), "--config", os.path.abspath(args.config),
            f"device_target={args.device_target}", *args.runner_args]


def msrun_command(top: Topology, log_dir: str, command: List[str]) -> List[str]:
    return ["msrun", f"--worker_num={top.workers}", f"--local_worker_num={top.local_workers}",
            f"--master_addr={top.master_addr}", f"--master_port={top.master_port}",
            f"--node_rank={top.node_rank}", f"--log_dir={log_dir}", "--join=True",
            f"--cluster_time_out={top.cluster_time_out}", *command]


def rank_table_processes(args: argparse.Namespace, env: Mapping[str, str],
                         log_dir: str) -> List[Process]:
    """One process per device of this server, as the zoo's launcher starts them."""
    path = env["RANK_TABLE_FILE"]
    servers = read_rank_table(path)
    server = find_server(servers, path, env.get("SERVER_ID"), env.get("HCCN_CONF", HCCN_CONF))
    size = sum(len(s.devices) for s in servers)
    if _int(args.workers, "WORKERS") != size:
        raise UserError(f"WORKERS {args.workers}: RANK_TABLE_FILE {path} has {size} devices")
    command = [sys.executable, *runner_command(args)]
    return [Process(int(e["RANK_ID"]), e, command, os.path.join(log_dir, f"worker_{e['RANK_ID']}.log"))
            for e in device_environments(servers, server, path)]


def failed_logs(log_dir: str) -> List[str]:
    """Worker logs that show a failure, the one that stopped first (the cause) first."""
    logs = []
    for name in os.listdir(log_dir) if os.path.isdir(log_dir) else []:
        path = os.path.join(log_dir, name)
        if re.fullmatch(r"worker_\d+\.log", name):
            with open(path, encoding="utf-8", errors="replace") as f:
                if FAILURE.search(f.read()):
                    logs.append(path)
    return sorted(logs, key=os.path.getmtime)


def report(logs: List[str]) -> None:
    for log in logs:
        print(f"failed: rank {_rank(log)} -- see {log}", file=sys.stderr)
    if logs:
        print(f"first to fail: rank {_rank(logs[0])} -- see {logs[0]}", file=sys.stderr)


def _rank(log: str) -> str:
    return re.search(r"worker_(\d+)\.log$", log).group(1)


def run_msrun(top: Topology, log_dir: str, command: List[str]) -> int:
    status = subprocess.call(msrun_command(top, log_dir, command), cwd=ROOT)
    if status:
        report(failed_logs(log_dir))
        print(f"msrun exited with status {status}; logs in {log_dir}", file=sys.stderr)
    else:
        print(f"logs in {log_dir}")
    return status


def run_processes(processes: List[Process]) -> int:
    """Start every process; when one fails, stop the others (they would wait in HCCL until its
    timeout) and name the first failure."""
    running = {}
    for p in processes:
        with open(p.log, "w", encoding="utf-8") as log:
            running[p.rank] = (p, subprocess.Popen(p.command, cwd=ROOT, stdout=log,
                                                   stderr=subprocess.STDOUT,
                                                   env={**os.environ, **p.env},
                                                   start_new_session=True))
    failed = []
    try:
        while running and not failed:
            for rank, (p, proc) in list(running.items()):
                if proc.poll() is not None:
                    del running[rank]
                    if proc.returncode:
                        failed.append(p.log)
            time.sleep(0.2)
    finally:  # also on Ctrl-C: the workers run in their own sessions
        for _, proc in running.values():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    report(failed)
    return 1 if failed else 0


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="launch_distributed.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runner", help="run_pretrain.py, run_finetune.py, ...")
    parser.add_argument("--local_workers", help="workers on this node (default WORKERS / NODES)")
    parser.add_argument("--node_rank", help="this node's rank, 0 on the master")
    parser.add_argument("--master_addr", help="node 0's address (msrun's scheduler)")
    parser.add_argument("--master_port", help=f"the scheduler's port (multi-node default {MSRUN_PORT})")
    parser.add_argument("--cluster_time_out", help="seconds msrun waits for the cluster to form (600)")
    parser.add_argument("--log_dir", help="worker logs (default a new temporary folder)")
    parser.add_argument("--dry_run", action="store_true", help="print the plan as JSON, start nothing")
    parser.add_argument("workers", help="the total number of workers over all nodes")
    parser.add_argument("device_target", help="Ascend, GPU or CPU")
    parser.add_argument("config", help="the runner's YAML config")
    parser.add_argument("runner_args", nargs=argparse.REMAINDER, help="key=value overrides")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args(sys.argv[1:])
    env = os.environ
    log_dir = args.log_dir or env.get("LOG_DIR")
    if args.dry_run:
        log_dir = log_dir or "<a new temporary folder>"
    else:
        log_dir = log_dir or tempfile.mkdtemp(prefix="msrun-logs.")
        os.makedirs(log_dir, exist_ok=True)
    if env.get("RANK_TABLE_FILE"):
        processes = rank_table_processes(args, env, log_dir)
        if args.dry_run:
            print(json.dumps({"launcher": "rank_table", "processes": [asdict(p) for p in processes]},
                             indent=2))
            return
        sys.exit(run_processes(processes))
    top = topology(args, env)
    if args.dry_run:
        print(json.dumps({"launcher": "msrun",
                          "command": msrun_command(top, log_dir, runner_command(args))}, indent=2))
        return
    sys.exit(run_msrun(top, log_dir, runner_command(args)))


if __name__ == "__main__":
    run_cli(main)
