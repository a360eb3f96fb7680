"""Notebook 05: which parameters get weight decay."""


def split_decay_groups(model):
    decay = [p for p in model.parameters() if p.ndim > 1]      # conv kernels, the fc matrix
    no_decay = [p for p in model.parameters() if p.ndim <= 1]  # BatchNorm weight/bias, fc bias
    return decay, no_decay
