"""Notebook 01, exercise 2b: which parameters of a zero-initialised residual stack get a gradient,
before and after the first optimiser step?"""

import torch
import torch.nn.functional as F

from resnet_edu.exercises.residual_block import make_stack  # the notebook's make_stack (Kaiming initialisation)

torch.manual_seed(0)
stack = make_stack("residual", 8)  # eight BasicBlocks of 16 channels, as the checker builds them
for block in stack:
    block.zero_init_residual()  # bn2.weight = 0, so F(x) = 0 in every block
x, target = torch.randn(16, 16, 8, 8), torch.randn(16, 16, 8, 8)


def parameters_with_gradient():
    stack.zero_grad(set_to_none=True)
    F.mse_loss(stack(x), target).backward()
    return [name for name, p in stack.named_parameters() if p.grad is not None and p.grad.any()]


moving = parameters_with_gradient()
print(f"{len(moving)} of {len(list(stack.parameters()))} parameters get a gradient:", moving)
# 1 and 2. Only bn2.weight and bn2.bias of each block: 16 of the 48 tensors (6 per block). bn2 computes
# bn2.weight * (normalised conv2 output) + bn2.bias, and with bn2.weight = 0 only these two can change
# it: a change of conv1, bn1 or conv2 is multiplied by the zero scale, so their gradient is exactly
# zero. bn2.weight's own gradient is not zero: it is the output's gradient times the normalised
# conv2 output, summed. The gradient still reaches the stack's input, through the shortcuts.

torch.optim.SGD(stack.parameters(), lr=0.1).step()
print("after one SGD step:", len(parameters_with_gradient()), "parameters get a gradient")
# 3. All 48. The step makes bn2.weight non-zero, and from then on a change of conv1, bn1 or conv2
# reaches F(x), so every parameter learns: each block starts as the identity and grows its residual
# only as far as the loss asks for it.
