"""resnet_edu.metrics: the confusion matrix, per-class accuracy, confident mistakes, test-time augmentation."""

import torch

from resnet_edu.train import TrainConfig, build_model


def test_confusion_matrix_and_its_per_class_accuracy():
    from resnet_edu.metrics import confusion_matrix, most_confident_mistakes, per_class_accuracy

    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predicted = torch.tensor([0, 1, 1, 1, 0, 2])
    matrix = confusion_matrix(labels, predicted, num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert per_class_accuracy(matrix).tolist() == [0.5, 1.0, 0.5]
    probabilities = torch.tensor([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0, 1, 0], [0, 1, 0], [0.6, 0, 0.4], [0, 0, 1]])
    assert most_confident_mistakes(probabilities, labels, k=5).tolist() == [1, 4]  # wrong at 0.7, then 0.6


def test_test_time_augmentation_sees_an_image_and_its_mirror_alike():
    from resnet_edu.metrics import logits_of

    torch.manual_seed(0)
    model = build_model(TrainConfig(stem="imagenet"), num_classes=3).eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(logits_of(model, images), logits_of(model, images.flip(3)))
        assert torch.allclose(logits_of(model, images, tta=True), logits_of(model, images.flip(3), tta=True),
                              atol=1e-6)
