"""Notebook 06, exercise 2: what deleting blocks does, reasoned out. The checked answers are the
measurements of the run (the sweep in section 5), so this file gives the reasoning and an
example of predictions, not the measured values.

worst_stage: deleting a residual block leaves its shortcut, so the signal always gets through;
what changes is what the blocks after it receive. Two candidates to weigh:
* the blocks that halve the resolution (layer2.0, layer3.0): what is left of them keeps every
  second pixel and pads the channels with zeros, so the next block (layer2.1 after layer2.0) receives
  an input whose second half of channels is empty (16 to 31 of 32, all zero). That block's own branch
  fills every channel again, so no later block receives an empty channel, but each receives a signal
  built from half the features it was trained on. Veit et al. (2016) found these blocks mattered most
  in a fully trained ResNet-110, though only modestly;
* the first blocks (layer1): every later block was trained on what they made of the stem's output.
Which one the network depends on most is what the sweep measures. The stored ResNet-56, trained for
a ninth of the paper's steps, answers layer1: in the sweep of section 5, deleting layer1.0 costs the
most, more than either block that halves the resolution (look at the four largest losses printed after the sweep;
the exact points vary a little from one machine to another). Every learner's sweep runs on the same
stored networks, so the example below says layer1.

plain_accuracy_without_layer2.4: a plain network has one path. Without layer2.4, layer2.5 receives
layer2.3's output, which it never saw in training, and every block after it compounds the mismatch.
Predict an accuracy near chance, 0.1 for ten classes (or below the network's own accuracy, if that is
itself low).
"""

example = {"worst_stage": "layer1", "plain_accuracy_without_layer2.4": 0.1}
print("an example of predictions, to check against your own run:", example)
