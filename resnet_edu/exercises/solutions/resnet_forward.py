"""Notebook 03: the forward pass of ResNet, written out: the stem, the four stages, the head. It is
what ResNet.forward does (through forward_features), one layer a line."""

import torch


def resnet_forward(model, x):
    x = model.conv1(x)  # (N, 64, H/2, W/2); stride 1 with the CIFAR stem
    x = model.bn1(x)
    x = model.relu(x)
    x = model.maxpool(x)  # (N, 64, H/4, W/4); nn.Identity with the CIFAR stem
    x = model.layer1(x)  # (N, 64 * e, H/4, W/4), e = block.expansion (1 or 4)
    x = model.layer2(x)  # (N, 128 * e, H/8, W/8)
    x = model.layer3(x)  # (N, 256 * e, H/16, W/16)
    x = model.layer4(x)  # (N, 512 * e, H/32, W/32)
    x = model.avgpool(x)  # (N, 512 * e, 1, 1): the average of each whole map, whatever its size
    x = torch.flatten(x, 1)  # (N, 512 * e): fc multiplies the last dimension
    return model.fc(x)  # (N, num_classes)
