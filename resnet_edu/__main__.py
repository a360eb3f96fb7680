"""``python -m resnet_edu``: train a ResNet on CIFAR-10 from the command line (see :mod:`resnet_edu.cli`)."""

from resnet_edu.cli import main

raise SystemExit(main())
