"""Two API nodes and two job workers in network namespaces: `python -m bench.multihost`."""
