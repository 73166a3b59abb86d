"""The self-play loop: sample, judge, select negatives, search, build pairs and RFT data, train, evaluate; manifest and resume."""
