"""The self-play loop: sample, judge, select negatives, search, build pairs and RFT data, train, evaluate.

The run directory keeps a manifest, so an interrupted run resumes where it stopped.
"""
