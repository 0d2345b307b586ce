"""RingCentral use cases: click-to-call, call log to attempts, texts with STOP opt-out."""
