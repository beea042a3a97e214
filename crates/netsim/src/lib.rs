//! A deterministic simulated network on virtual time for sans-IO protocol
//! cores (work in progress: the simulator lands in the next commits).
