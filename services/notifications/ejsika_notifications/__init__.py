"""e-JSiKa notifications: which OPD gets told what, minimised, signed and delivered with retries."""
