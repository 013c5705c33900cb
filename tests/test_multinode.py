"""Multi-node msrun through scripts/run_distributed_pretrain.sh: the same command on every node,
only the node rank differs. Two "nodes" on this host (two launches on 127.0.0.1, one worker
each) end with the weights of one worker with the same global batch; a worker failing on one
node fails both launches, each naming that rank's log."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from test_pretraining_run import ROOT, pretraining_data, run, weights  # noqa: F401 (a fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = f"{ROOT}/scripts/run_distributed_pretrain.sh"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_env(rank, port, log_dir, **extra):
    """NODES / NODE_RANK / MASTER_ADDR / MASTER_PORT as a cluster's job script sets them; node 1's
    msrun sees the master address as another machine's (tests/remote_node)."""
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_v="3", NODES="2", NODE_RANK=str(rank),
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOG_DIR=str(log_dir), **extra)
    if rank == 1:
        env["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(HERE, "remote_node")])
    return env


def launch_two_nodes(config, overrides, log_dirs, timeout, extra_env=None, node1_overrides=()):
    port = free_port()
    procs = [subprocess.Popen(["bash", SCRIPT, "--cluster_time_out", "60", "2", "CPU", config,
                               *overrides, *(node1_overrides if rank else ())],
                              env=node_env(rank, port, log_dirs[rank], **(extra_env or {})),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        results.append((proc.returncode, out, err))
    return results


def test_each_node_gets_the_same_command_but_its_rank(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    commands = []
    for rank in (0, 1):
        result = subprocess.run(["bash", SCRIPT, "--dry_run", "--node_rank", str(rank),
                                 "--master_addr", "10.0.0.1", "--local_workers", "8",
                                 "--log_dir", str(tmp_path), "16", "Ascend", "run.yaml", "seed=1"],
                                env=env, capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        commands.append(json.loads(result.stdout)["command"])
    assert commands[0] == ["msrun", "--worker_num=16", "--local_worker_num=8", "--master_addr=10.0.0.1",
                           "--master_port=8118", "--node_rank=0", f"--log_dir={tmp_path}", "--join=True",
                           "--cluster_time_out=600", f"{ROOT}/run_pretrain.py", "--config",
                           str(tmp_path / "run.yaml"), "device_target=Ascend", "seed=1"]
    assert [c for c in commands[1] if c not in commands[0]] == ["--node_rank=1"]
    by_env = subprocess.run(["bash", SCRIPT, "--dry_run", "16", "Ascend", "run.yaml"], cwd=tmp_path,
                            env=dict(env, NODES="2", NODE_RANK="1", MASTER_ADDR="10.0.0.1",
                                     MASTER_PORT="9000", CLUSTER_TIME_OUT="90", LOG_DIR=str(tmp_path)),
                            capture_output=True, text=True)
    command = json.loads(by_env.stdout)["command"]
    assert command[:9] == ["msrun", "--worker_num=16", "--local_worker_num=8", "--master_addr=10.0.0.1",
                           "--master_port=9000", "--node_rank=1", f"--log_dir={tmp_path}", "--join=True",
                           "--cluster_time_out=90"]


@pytest.mark.parametrize("env, message", [
    ({"NODES": "2", "NODE_RANK": "0"}, "MASTER_ADDR: required when this node runs 8 of 16 workers"),
    ({"NODES": "2", "MASTER_ADDR": "10.0.0.1"}, "NODE_RANK None: expected this node's rank, 0..1"),
    ({"NODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "10.0.0.1"}, "NODE_RANK 2: expected this node's rank, 0..1"),
    ({"NODES": "3"}, "NODES 3: WORKERS 16 do not split evenly over them"),
    ({"LOCAL_WORKERS": "5"}, "LOCAL_WORKERS 5: expected a divisor of WORKERS 16"),
    ({"MASTER_PORT": "eighty"}, "MASTER_PORT 'eighty': expected an integer"),
])
def test_bad_cluster_settings_are_one_line(tmp_path, env, message):
    result = subprocess.run(["bash", SCRIPT, "--dry_run", "16", "Ascend", "run.yaml"], cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=ROOT, **env), capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1


def test_two_nodes_equal_one_worker(pretraining_data, tmp_path):  # noqa: F811
    config = str(pretraining_data / "run.yaml")
    one = run(sys.executable, f"{ROOT}/run_pretrain.py", "--config", config,
              f"output_dir={tmp_path / 'one'}", "batch_size=4")
    assert one.returncode == 0, one.stderr[-2000:]
    logs = [tmp_path / "node0", tmp_path / "node1"]
    results = launch_two_nodes(config, [f"output_dir={tmp_path / 'two'}", "batch_size=2"], logs, 300)
    for code, out, err in results:
        assert code == 0, out[-2000:] + err[-2000:]
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert a.keys() == b.keys()
    assert max(np.abs(a[k] - b[k]).max() for k in a) <= 1e-5
    # each node ran its own rank: node 0 rank 0 (and the scheduler), node 1 rank 1
    assert sorted(os.listdir(logs[0])) == ["scheduler.log", "worker_0.log"]
    assert sorted(os.listdir(logs[1])) == ["worker_1.log"]
    assert "rank 0 of 2 on CPU" in (logs[0] / "worker_0.log").read_text()
    assert "rank 1 of 2 on CPU" in (logs[1] / "worker_1.log").read_text()


@pytest.mark.slow  # ~50 s: the failure is noticed through MindSpore's timeouts
def test_a_worker_failing_on_one_node_fails_both_and_is_named(pretraining_data, tmp_path):  # noqa: F811
    """Rank 1 (node 1) fails after the cluster formed; rank 0 notices at its next collective.
    The logs sit in one folder, as on a shared file system, so both launches can name rank 1's.
    MindSpore's collective and node timeouts (30 s each by default) are shortened here."""
    config = str(pretraining_data / "run.yaml")
    logs = tmp_path / "logs"
    results = launch_two_nodes(config, [f"output_dir={tmp_path / 'run'}", "batch_size=2"],
                               [logs, logs], 240,
                               extra_env={"MS_CPU_COMM_OP_TIMEOUT": "10", "MS_NODE_TIMEOUT": "10"},
                               node1_overrides=["data_dir=/nonexistent"])
    for code, out, err in results:
        assert code != 0
        assert f"first to fail: rank 1 -- see {logs / 'worker_1.log'}" in err, err[-3000:]
    assert "error: /nonexistent: no manifest.json" in (logs / "worker_1.log").read_text()
