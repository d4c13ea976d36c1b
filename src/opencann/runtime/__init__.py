"""The runtime (the AscendCL of opencann): devices, memory pools, streams, events, tensors. Arrives with the graph engine."""
