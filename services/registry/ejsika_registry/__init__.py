"""e-JSiKa registry: the only writer of household data."""
