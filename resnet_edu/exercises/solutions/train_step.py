"""Notebook 05: one training step, in fp32."""


def my_train_step(model, images, labels, optimizer, scheduler, criterion):
    model.train()                          # BatchNorm: the batch's statistics, and update the running ones
    loss = criterion(model(images), labels)
    optimizer.zero_grad(set_to_none=True)  # backward adds to .grad: clear the last step's gradients first
    loss.backward()                        # the gradients of this batch's loss
    optimizer.step()                       # apply them, at this step's learning rate
    scheduler.step()                       # then move the learning rate on, for the next step
    return loss.item()                     # a Python float: the tensor would keep the step's graph alive
