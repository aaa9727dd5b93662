# kazoo's TreeCache loading a tree, for recipes/benches/cache.rs (beside our TreeCache and
# Curator's CuratorCache in the same run). Run with Debian's python3-kazoo.
#
# Usage: kazoo_tree_cache.py <connect> <root>
#
# Prints "ready" once connected, then reads commands on standard input:
#   load <nodes>  builds a TreeCache of <root>, and once it reports initialized answers
#         "loaded <milliseconds from start to initialized> <cached nodes>" (<nodes>, the
#         count expected, is for the Curator peer; kazoo's count comes out right)
#   quit  closes the cache and the client and exits (so does the end of input)

import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache, TreeEvent


def count(cache, path):
    """The nodes cached at and below path (read from the cache's memory)."""
    if cache.get_data(path) is None:
        return 0
    below = cache.get_children(path) or ()
    return 1 + sum(count(cache, path.rstrip("/") + "/" + name) for name in below)


def main():
    connect, root = sys.argv[1], sys.argv[2]
    client = KazooClient(hosts=connect, timeout=30)
    client.start()
    print("ready", flush=True)
    cache = None
    for line in sys.stdin:
        command = line.strip()
        if command.startswith("load "):
            initialized = threading.Event()
            started = time.monotonic()
            cache = TreeCache(client, root)
            cache.listen(
                lambda event: event.event_type == TreeEvent.INITIALIZED and initialized.set()
            )
            cache.start()
            initialized.wait()
            millis = int((time.monotonic() - started) * 1000)
            print("loaded %d %d" % (millis, count(cache, root)), flush=True)
        elif command == "quit":
            break
        else:
            print("error unknown command " + command, flush=True)
    if cache is not None:
        cache.close()
    client.stop()
    client.close()


main()
