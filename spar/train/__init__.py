"""Training over TRL: the actor by DPO (dpo.py), the refiner by RFT (rft.py)."""
