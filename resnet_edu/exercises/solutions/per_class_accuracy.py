"""Notebook 05: the accuracy of each class, from the confusion matrix."""


def my_per_class_accuracy(matrix):
    matrix = matrix.double()
    return matrix.diagonal() / matrix.sum(1)  # correct / images of that true class
