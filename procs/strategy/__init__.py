"""Strategy: feature vectors -> target positions with reasons; the same code runs live and in replay."""
