"""Notebook 01, exercise 2, question 2: which parameters get a gradient in a zero-initialised
residual stack? (Question 1: rerun section 5 with channels=64 and compare the tables.)"""

import torch
import torch.nn.functional as F
from torch import nn

from resnet_edu.blocks import BasicBlock

torch.manual_seed(0)
stack = nn.Sequential(*[BasicBlock(16, 16) for _ in range(8)])
for block in stack:
    block.zero_init_residual()  # bn2.weight = 0, so F(x) = 0 in every block
x, target = torch.randn(16, 16, 8, 8), torch.randn(16, 16, 8, 8)


def parameters_with_gradient():
    stack.zero_grad(set_to_none=True)
    F.mse_loss(stack(x), target).backward()
    return [name for name, p in stack.named_parameters() if p.grad is not None and p.grad.any()]


moving = parameters_with_gradient()
print(f"{len(moving)} of {len(list(stack.parameters()))} parameters get a gradient:", moving)
# Only bn2.weight and bn2.bias of each block (16 of 48): they are the only parameters that can
# change F(x) while bn2.weight is zero. conv1, bn1 and conv2 sit behind the zero scale, so their
# gradient is exactly zero. The stack still passes the gradient to its input through the shortcuts.

torch.optim.SGD(stack.parameters(), lr=0.1).step()
print("after one SGD step:", len(parameters_with_gradient()), "parameters get a gradient")
# One step makes bn2.weight non-zero, and from then on every parameter learns: each block starts
# as the identity and grows its residual only as far as the loss asks for it.
