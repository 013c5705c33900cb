"""On the test's second "node" (PYTHONPATH): its msrun starts no scheduler, as msrun on a node
whose master address is another machine's does; 127.0.0.1 is local to both "nodes" here."""
import os
import sys

if os.path.basename(sys.argv[0] if sys.argv else "") == "msrun":
    from mindspore.parallel.cluster.process_entity import _api

    _api._is_local_ip = lambda address: False
