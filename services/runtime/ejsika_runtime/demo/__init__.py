"""The demo: synthetic Banten families, a webhook receiver, and the seeding of a running platform."""
