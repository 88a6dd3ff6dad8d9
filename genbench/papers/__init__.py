"""The papers' own numbers, each written once as a named record.

Claims compare against these records (``zhang.TABLE1["mlp_1x512"].random_test``) instead of
retyping a number next to each check, so a number has one source line that cites the paper's
table or section. Values are fractions (0.9934 for the paper's "99.34%"). ``None`` marks an
entry the paper does not print as a number (e.g. Table 4's "failed to converge").

Modules: :mod:`genbench.papers.zhang` (Zhang et al. 2017), :mod:`genbench.papers.extreme`
(points of extreme overfitting), ``genbench.papers.consensus`` (consensus-based classification).
"""
