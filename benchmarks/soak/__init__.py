"""`make soak`: the backend under a simulated PBX with faults; every call accounted for."""
