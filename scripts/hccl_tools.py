"""Write an HCCL rank table in the model zoo's format, or join several servers' tables.

  python scripts/hccl_tools.py --device_num 0,8 [--server_ip IP] [--hccn_conf /etc/hccn.conf] [--output F]
  python scripts/hccl_tools.py --merge hccl_8p_a.json hccl_8p_b.json --output hccl_16p.json

Device IPs come from hccn.conf's address_K=IP lines; the server IP defaults to this host's.
Without --output the zoo's name is used: hccl_<N>p_<devices>_<server_ip>.json (hccl_<N>p.json merged).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.cluster.rank_table import HCCN_CONF, host_ips, merge_tables, parse_device_range, \
    server_table, write_table  # noqa: E402
from src.errors import UserError, run_cli  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device_num", help="devices START,END (END excluded), e.g. 0,8 or [0,8)")
    parser.add_argument("--server_ip", help="this server's IP (default: the host's)")
    parser.add_argument("--hccn_conf", default=os.environ.get("HCCN_CONF", HCCN_CONF))
    parser.add_argument("--merge", nargs="+", metavar="TABLE", help="rank tables to join, in order")
    parser.add_argument("--output", help="the file to write")
    args = parser.parse_args()
    if args.merge:
        table = merge_tables(args.merge)
        count = sum(len(s["device"]) for s in table["server_list"])
        output = args.output or f"hccl_{count}p.json"
    elif args.device_num:
        devices = parse_device_range(args.device_num)
        ips = host_ips()
        server_ip = args.server_ip or (ips[0] if ips else None)
        if not server_ip:
            raise UserError("--server_ip: required (no host IP found)")
        table = server_table(devices, server_ip, args.hccn_conf)
        output = args.output or (f"hccl_{len(devices)}p_{''.join(map(str, devices))}_"
                                 f"{server_ip}.json")
    else:
        raise UserError("expected --device_num START,END or --merge TABLE TABLE ...")
    print(write_table(table, output))


if __name__ == "__main__":
    run_cli(main)
