"""Studies: the compositions of library calls that claims share, one module per paper.

A study function takes a claim's settings (one frozen dataclass per claim family), trains or
solves through ``genbench.experiment`` (so shared runs come from the run cache), applies the
analyses, and returns plain measurements. Claim files then only hold settings and checks.
"""
