"""What a trained model gets right and wrong: its predictions, the confusion matrix, per-class
accuracy and the mistakes it makes with the most confidence."""

import torch

from .loaders import DeviceLoader
from .runtime import autocast


def logits_of(model, images, tta=False):
    """The model's logits in float32, or with ``tta`` (test-time augmentation) the mean of those of the
    images and of their mirror images."""
    logits = model(images).float()
    return (logits + model(images.flip(3)).float()) / 2 if tta else logits


@torch.no_grad()
def predict(model, images, *, batch_size=1000, device=None, precision="fp32", tta=False):
    """Class probabilities (N, classes) for uint8 images (N, 3, 32, 32), normalised as in training."""
    device = torch.device(device or next(model.parameters()).device)
    loader = DeviceLoader(images, torch.zeros(len(images), dtype=torch.int64), batch_size, train=False,
                          device=device)
    model.eval()
    out = []
    for batch, _ in loader:
        with autocast(device, precision):
            out.append(logits_of(model, batch, tta).softmax(1).cpu())
    return torch.cat(out)


def confusion_matrix(labels, predictions, num_classes=10):
    """counts[i, j] = how many images of true class i were predicted as class j."""
    index = torch.as_tensor(labels) * num_classes + torch.as_tensor(predictions)
    return torch.bincount(index, minlength=num_classes ** 2).view(num_classes, num_classes)


def per_class_accuracy(matrix):
    """The diagonal over the row sums: the fraction of each true class predicted correctly."""
    matrix = torch.as_tensor(matrix).double()
    return matrix.diagonal() / matrix.sum(1).clamp(min=1)


def most_confident_mistakes(probabilities, labels, k=16):
    """Indices of the k wrong predictions made with the highest probability, most confident first."""
    confidence, predicted = probabilities.max(1)
    wrong = (predicted != labels).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True)
    return wrong[order[:k]]
