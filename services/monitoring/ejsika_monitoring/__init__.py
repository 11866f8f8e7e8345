"""e-JSiKa monitoring: what pendamping see on their visits, and which visits are due or overdue."""
