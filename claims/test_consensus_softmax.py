"""C.S3.softmax_scale: scaling the softmax inputs sharpens the distribution (consensus paper, §III).

The paper's toy example: inputs {0, 0.5, 1, 2} and the same inputs times 1.25. The numbers are
printed with four decimals, so a measured value reproduces a printed one when it lies within
one unit of the last printed decimal (1e-4). Why not half a unit (5e-5, "rounds to the printed
value"): the paper prints softmax(z)[1] = 0.12925005 as 0.1292, i.e. rounded half-to-even from
the five-decimal 0.12925; with 5e-5 this one value would miss by 5e-8, a rounding artefact and
not a failure to reproduce. Every measured value is recorded at full precision.

The claim is pure arithmetic, so both scales compute the same thing; the full case runs it on
the full-scale device (a GPU, in float64 there too), which checks that the arithmetic does
not depend on the device.
"""

import pytest
import torch

from genbench.papers.consensus import SOFTMAX

INPUTS = SOFTMAX.logits
FACTOR = SOFTMAX.scale
PRINTED_TOL = 1e-4  # one unit of the paper's fourth decimal (see the module docstring)
PAPER = {  # the paper's numbers, written once in genbench.papers.consensus
    "p": SOFTMAX.probs,
    "p_scaled": SOFTMAX.scaled_probs,
    "ce_class4": SOFTMAX.loss_class4,  # (before, after) scaling, sample of class 4 (index 3)
    "ce_class1": SOFTMAX.loss_class1,  # (before, after) scaling, sample of class 1 (index 0)
}


@pytest.mark.claim("C.S3.softmax_scale",
                   source="Consensus-based classification, Section III (toy example)",
                   statement="softmax([0,0.5,1,2]) = [0.0784, 0.1292, 0.2131, 0.5793]; x1.25 gives "
                             "[0.0539, 0.1008, 0.1882, 0.6571]; cross-entropy for class 4 drops "
                             "0.5460 -> 0.4200 and for class 1 rises 2.5460 -> 2.9200")
def test_softmax_scale(claim, device):
    z = torch.tensor(INPUTS, dtype=torch.float64, device=device)
    p, p_scaled = torch.softmax(z, 0), torch.softmax(FACTOR * z, 0)
    ce, ce_scaled = -torch.log(p), -torch.log(p_scaled)

    for i in range(len(INPUTS)):
        claim.within(f"p[{i + 1}]", p[i], PAPER["p"][i], abs_tol=PRINTED_TOL)
        claim.within(f"p_scaled[{i + 1}]", p_scaled[i], PAPER["p_scaled"][i], abs_tol=PRINTED_TOL)
    for name, cls in (("ce_class4", 3), ("ce_class1", 0)):
        before, after = PAPER[name]
        claim.within(f"{name}_before", ce[cls], before, abs_tol=PRINTED_TOL)
        claim.within(f"{name}_after", ce_scaled[cls], after, abs_tol=PRINTED_TOL)
    claim.holds("scaling sharpens: the top class gains, every other class loses",
                bool(p_scaled[3] > p[3]) and bool((p_scaled[:3] < p[:3]).all()))
    claim.sizes(inputs="4 logits, 1 scale factor")
    claim.figure("consensus_softmax_scale", "Softmax of {0, 0.5, 1, 2} before and after x1.25",
                 "line", "class", "probability",
                 {"inputs x1": {"x": [1, 2, 3, 4], "y": p},
                  f"inputs x{FACTOR}": {"x": [1, 2, 3, 4], "y": p_scaled}})
    claim.conclude()
