"""e-JSiKa eligibility: scores, eligibility and graduation, each explained and reproducible."""
