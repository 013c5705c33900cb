"""HCCL rank tables without an Ascend: hccl_tools.py writes and merges the zoo's format, and the
launcher's dry run shows the command and variables each local process of a server would get."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args, env=None, cwd=None, timeout=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})), timeout=timeout)


def hccn_conf(path, subnet):
    lines = [f"address_{d}=192.{subnet}.{d}.1\nnetmask_{d}=255.255.255.0\n" for d in range(4)]
    path.write_text("".join(lines))
    return path


@pytest.fixture
def two_servers(tmp_path):
    """A 2 x 4-device table merged from each server's own hccl_tools.py output."""
    for name, subnet, ip in (("a", 168, "10.0.0.1"), ("b", 169, "10.0.0.2")):
        made = run(f"{ROOT}/scripts/hccl_tools.py", "--device_num", "0,4", "--server_ip", ip,
                   "--hccn_conf", str(hccn_conf(tmp_path / f"{name}.conf", subnet)),
                   "--output", str(tmp_path / f"{name}.json"))
        assert made.returncode == 0, made.stderr
    merged = run(f"{ROOT}/scripts/hccl_tools.py", "--merge", str(tmp_path / "a.json"),
                 str(tmp_path / "b.json"), "--output", str(tmp_path / "hccl_8p.json"))
    assert merged.returncode == 0, merged.stderr
    return tmp_path


def test_hccl_tools_writes_and_merges_the_zoo_format(two_servers):
    one = json.loads((two_servers / "b.json").read_text())
    assert one == {"version": "1.0", "server_count": "1", "status": "completed", "server_list": [
        {"server_id": "10.0.0.2", "host_nic_ip": "reserve",
         "device": [{"device_id": str(d), "device_ip": f"192.169.{d}.1", "rank_id": str(d)}
                    for d in range(4)]}]}
    table = json.loads((two_servers / "hccl_8p.json").read_text())
    assert table["server_count"] == "2"
    assert [s["server_id"] for s in table["server_list"]] == ["10.0.0.1", "10.0.0.2"]
    assert [d["rank_id"] for s in table["server_list"] for d in s["device"]] == [str(r) for r in range(8)]


def plan(folder, env, workers="8"):
    result = run("-m", "src.cluster.launch", "run_finetune.py", "--dry_run", "--log_dir",
                 str(folder / "logs"), workers, "Ascend", str(folder / "run.yaml"), "batch_size=4",
                 env={"RANK_TABLE_FILE": str(folder / "hccl_8p.json"), **env}, cwd=folder)
    return result


@pytest.mark.parametrize("find_by", ["hccn_conf", "server_id"])
def test_each_local_device_gets_its_rank_from_the_table(two_servers, find_by):
    """The second server, found by its device IPs (a fake hccn.conf) or by SERVER_ID."""
    (two_servers / "run.yaml").write_text("task: squad\n")
    env = ({"HCCN_CONF": str(two_servers / "b.conf")} if find_by == "hccn_conf"
           else {"SERVER_ID": "10.0.0.2", "HCCN_CONF": str(two_servers / "none.conf")})
    result = plan(two_servers, env)
    assert result.returncode == 0, result.stderr
    processes = json.loads(result.stdout)["processes"]
    table = str(two_servers / "hccl_8p.json")
    assert [p["env"] for p in processes] == [
        {"RANK_TABLE_FILE": table, "RANK_SIZE": "8", "RANK_ID": str(4 + d), "DEVICE_ID": str(d)}
        for d in range(4)]
    assert [p["log"] for p in processes] == [str(two_servers / "logs" / f"worker_{4 + d}.log")
                                             for d in range(4)]
    assert all(p["command"] == [sys.executable, f"{ROOT}/run_finetune.py", "--config",
                                str(two_servers / "run.yaml"), "device_target=Ascend",
                                "batch_size=4"] for p in processes)


def malformed(table):
    table["server_list"][1]["device"][2]["rank_id"] = "1"
    return table


@pytest.mark.parametrize("edit, message", [
    (lambda t: "{not json", "not JSON"),
    (lambda t: {"version": "1.0"}, "no server_list"),
    (malformed, "rank_id values [0, 1, 1, 2, 3, 4, 5, 7] are not 0..7, each once"),
    (lambda t: dict(t, server_count="3"), "server_count is 3, but server_list has 2 servers"),
    (lambda t: {"server_list": [{"server_id": "x", "device": [{"device_id": "a"}]}]},
     "server_list[0].device[0]: needs integer rank_id and device_id"),
])
def test_malformed_table_is_one_clear_line(two_servers, edit, message):
    table = edit(json.loads((two_servers / "hccl_8p.json").read_text()))
    (two_servers / "hccl_8p.json").write_text(table if isinstance(table, str) else json.dumps(table))
    result = plan(two_servers, {"SERVER_ID": "10.0.0.2"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(
        f"error: RANK_TABLE_FILE {two_servers / 'hccl_8p.json'}")
    assert message in result.stderr


def test_unknown_server_and_wrong_worker_count_are_one_line(two_servers):
    missing = plan(two_servers, {"HCCN_CONF": str(two_servers / "none.conf")})
    assert missing.returncode == 2
    assert "no server is this machine" in missing.stderr and "set SERVER_ID to one of 10.0.0.1, 10.0.0.2" \
        in missing.stderr
    wrong = plan(two_servers, {"SERVER_ID": "10.0.0.1"}, workers="16")
    assert wrong.returncode == 2 and "WORKERS 16: RANK_TABLE_FILE" in wrong.stderr \
        and "has 8 devices" in wrong.stderr
    other = plan(two_servers, {"SERVER_ID": "10.9.9.9"})
    assert other.returncode == 2 and "SERVER_ID 10.9.9.9: not a server_id" in other.stderr


def test_hccl_tools_bad_input_is_one_line(two_servers):
    short = run(f"{ROOT}/scripts/hccl_tools.py", "--device_num", "0,8", "--server_ip", "10.0.0.1",
                "--hccn_conf", str(two_servers / "a.conf"), "--output", str(two_servers / "x.json"))
    assert short.returncode == 2 and "no address_4= line" in short.stderr
    assert not (two_servers / "x.json").exists()
    backwards = run(f"{ROOT}/scripts/hccl_tools.py", "--device_num", "8,0", "--server_ip", "1.2.3.4")
    assert backwards.returncode == 2 and "--device_num 8,0: expected START,END" in backwards.stderr
    twice = run(f"{ROOT}/scripts/hccl_tools.py", "--merge", str(two_servers / "a.json"),
                str(two_servers / "a.json"), "--output", str(two_servers / "y.json"))
    assert twice.returncode == 2 and "server 10.0.0.1 appears in more than one table" in twice.stderr


PROBE = """import os, sys, time
print("rank", os.environ["RANK_ID"], "device", os.environ["DEVICE_ID"], "of", os.environ["RANK_SIZE"], flush=True)
if os.environ["RANK_ID"] == "5":
    time.sleep(1)
    print("error: rank 5 cannot go on", flush=True)
    sys.exit(2)
time.sleep(120)
"""


def test_launch_starts_one_process_per_device_and_stops_them_when_one_fails(two_servers):
    """A stand-in runner on the second server: rank 5 fails, the other three (which would wait
    in HCCL) are stopped, and the launch names rank 5's log."""
    (two_servers / "probe.py").write_text(PROBE)
    (two_servers / "run.yaml").write_text("")
    result = run("-m", "src.cluster.launch", str(two_servers / "probe.py"), "--log_dir",
                 str(two_servers / "logs"), "8", "Ascend", str(two_servers / "run.yaml"),
                 env={"RANK_TABLE_FILE": str(two_servers / "hccl_8p.json"), "SERVER_ID": "10.0.0.2"},
                 timeout=60)  # the others sleep 120 s unless stopped
    assert result.returncode == 1
    log = two_servers / "logs" / "worker_5.log"
    assert f"first to fail: rank 5 -- see {log}" in result.stderr
    assert log.read_text().startswith("rank 5 device 1 of 8\n")
    assert sorted(os.listdir(two_servers / "logs")) == [f"worker_{r}.log" for r in range(4, 8)]
