"""The reference solutions of the exercises, one file per exercise, printed by ``show_solution``."""
