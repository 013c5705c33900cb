"""HCCL rank tables in the model zoo's format: read and check one, find this server in it,
plan one process per local device, and write or merge tables (scripts/hccl_tools.py)."""
import json
import os
import re
import socket
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from src.errors import UserError
from src.files import write_text_atomic

HCCN_CONF = "/etc/hccn.conf"


@dataclass
class Device:
    """One device of a server: its HCCL rank, its local id and the IP of its NIC."""

    rank_id: int
    device_id: int
    device_ip: str


@dataclass
class Server:
    server_id: str
    devices: List[Device]


def read_rank_table(path: str) -> List[Server]:
    """The servers of a rank table; anything malformed is a UserError naming the file."""
    return _checked_servers(_load_table(path), path)


def _load_table(path: str) -> dict:
    """The rank table file's JSON; unreadable or not JSON is a UserError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as err:
        raise UserError(f"RANK_TABLE_FILE {path}: cannot read it ({err.strerror})") from None
    except ValueError as err:
        raise UserError(f"RANK_TABLE_FILE {path}: not JSON ({err})") from None


def _checked_servers(table: dict, path: str) -> List[Server]:
    """The table's servers, their rank_ids checked to be 0..n-1, each once."""
    servers = _servers(table, path)
    ranks = sorted(d.rank_id for s in servers for d in s.devices)
    if ranks != list(range(len(ranks))):
        raise UserError(f"RANK_TABLE_FILE {path}: rank_id values {ranks} are not 0..{len(ranks) - 1}, "
                        "each once")
    return servers


def _servers(table, path: str) -> List[Server]:
    expected = ('expected {"server_list": [{"server_id": IP, "device": [{"device_id": "0", '
                '"device_ip": IP, "rank_id": "0"}, ...]}, ...]}')
    if not isinstance(table, dict) or not isinstance(table.get("server_list"), list) \
            or not table["server_list"]:
        raise UserError(f"RANK_TABLE_FILE {path}: no server_list; {expected}")
    servers = []
    for i, entry in enumerate(table["server_list"]):
        where = f"RANK_TABLE_FILE {path}: server_list[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("server_id"), str) \
                or not isinstance(entry.get("device"), list) or not entry["device"]:
            raise UserError(f"{where}: needs a server_id and a non-empty device list; {expected}")
        servers.append(Server(entry["server_id"], [_device(d, f"{where}.device[{j}]", expected)
                                                   for j, d in enumerate(entry["device"])]))
    count = table.get("server_count")
    if count is not None and str(count) != str(len(servers)):
        raise UserError(f"RANK_TABLE_FILE {path}: server_count is {count}, but server_list has "
                        f"{len(servers)} servers")
    return servers


def _device(entry, where: str, expected: str) -> Device:
    try:
        return Device(int(entry["rank_id"]), int(entry["device_id"]), str(entry["device_ip"]))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{where}: needs integer rank_id and device_id and a device_ip; "
                        f"{expected}") from None


def hccn_device_ips(path: str) -> Dict[int, str]:
    """Device id -> NIC IP from the `address_K=IP` lines of an hccn.conf."""
    ips = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = re.fullmatch(r"\s*address_(\d+)\s*=\s*(\S+)\s*", line)
            if match:
                ips[int(match.group(1))] = match.group(2)
    return ips


def host_ips() -> List[str]:
    """This machine's IPv4 addresses: those of its host name, and the one it routes out with."""
    ips = set()
    try:
        ips.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a route
            ips.add(probe.getsockname()[0])
        except OSError:
            pass
    return sorted(ips)


def find_server(servers: List[Server], path: str, server_id: Optional[str] = None,
                hccn_conf: str = HCCN_CONF) -> Server:
    """This machine's server: the one named `server_id` (SERVER_ID), else the one holding a
    device IP of hccn.conf, else the one whose server_id is a host IP."""
    ids = [s.server_id for s in servers]
    if server_id:
        for server in servers:
            if server.server_id == server_id:
                return server
        raise UserError(f"SERVER_ID {server_id}: not a server_id of {path} ({', '.join(ids)})")
    device_ips = set(hccn_device_ips(hccn_conf).values()) if os.path.isfile(hccn_conf) else set()
    for server in servers:
        if device_ips & {d.device_ip for d in server.devices}:
            return server
    hosts = host_ips()
    for server in servers:
        if server.server_id in hosts:
            return server
    raise UserError(f"RANK_TABLE_FILE {path}: no server is this machine (device IPs from {hccn_conf}: "
                    f"{', '.join(sorted(device_ips)) or 'none'}; host IPs: {', '.join(hosts) or 'none'}); "
                    f"set SERVER_ID to one of {', '.join(ids)}")


def device_environments(servers: List[Server], server: Server, path: str) -> List[Dict[str, str]]:
    """The variables of each local process, as the zoo's launcher sets them: the table, its
    total device count as RANK_SIZE, and this device's RANK_ID and DEVICE_ID."""
    size = sum(len(s.devices) for s in servers)
    return [{"RANK_TABLE_FILE": os.path.abspath(path), "RANK_SIZE": str(size),
             "RANK_ID": str(d.rank_id), "DEVICE_ID": str(d.device_id)}
            for d in sorted(server.devices, key=lambda d: d.rank_id)]


def parse_device_range(text: str) -> range:
    """`0,8` or the zoo's `[0,8)`: devices 0 to 7."""
    match = re.fullmatch(r"\s*\[?\s*(\d+)\s*,\s*(\d+)\s*\)?\s*", text)
    if not match or int(match.group(1)) >= int(match.group(2)):
        raise UserError(f"--device_num {text}: expected START,END (devices START..END-1), e.g. 0,8")
    return range(int(match.group(1)), int(match.group(2)))


def server_table(devices: Sequence[int], server_ip: str, hccn_conf: str) -> dict:
    """A one-server rank table of `devices`, their IPs read from hccn.conf."""
    try:
        ips = hccn_device_ips(hccn_conf)
    except OSError as err:
        raise UserError(f"{hccn_conf}: cannot read it ({err.strerror}); expected the "
                        "address_K=IP lines of the device NICs") from None
    missing = [d for d in devices if d not in ips]
    if missing:
        raise UserError(f"{hccn_conf}: no address_{missing[0]}= line (devices {list(devices)} "
                        "need one each)")
    device = [{"device_id": str(d), "device_ip": ips[d], "rank_id": str(rank)}
              for rank, d in enumerate(devices)]
    return {"version": "1.0", "server_count": "1",
            "server_list": [{"server_id": server_ip, "device": device, "host_nic_ip": "reserve"}],
            "status": "completed"}


def merge_tables(paths: Sequence[str]) -> dict:
    """One table of the servers of several, in the order given, ranks numbered across them."""
    server_list = []
    for path in paths:
        table = _load_table(path)
        _checked_servers(table, path)
        server_list.extend(table["server_list"])
    seen = [s["server_id"] for s in server_list]
    duplicates = sorted({s for s in seen if seen.count(s) > 1})
    if duplicates:
        raise UserError(f"--merge: server {duplicates[0]} appears in more than one table")
    rank = 0
    for server in server_list:
        for device in server["device"]:
            device["rank_id"] = str(rank)
            rank += 1
    return {"version": "1.0", "server_count": str(len(server_list)), "server_list": server_list,
            "status": "completed"}


def write_table(table: dict, path: str) -> str:
    return write_text_atomic(path, json.dumps(table, indent=4) + "\n")
