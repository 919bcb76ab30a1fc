"""Cityscapes data: labels, dataset, transforms, synthetic scenes, image I/O."""
