"""Pictures: the diagrams of the architecture (:mod:`.diagrams`, drawn from real modules) and the
plots of training and its results (:mod:`.plots`). Both need matplotlib, which only they import."""
