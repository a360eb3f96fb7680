"""resnet_edu: the tested version of what the course's notebooks build."""
