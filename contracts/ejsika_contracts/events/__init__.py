"""The v1 events of e-JSiKa, one module per emitting service."""
