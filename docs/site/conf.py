"""Sphinx configuration of the course's site. Build it with `python tools/build_site.py`, which
stages this folder with the notebooks, the README and the teacher's guide, then runs Sphinx on the
staged copy (this file is read there, so paths below are relative to the staged folder)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "resnet_edu"
author = "the resnet_edu authors"
html_title = "resnet_edu: ResNet18 from scratch"

extensions = ["myst_nb", "course_site"]
exclude_patterns = ["_build", "README.md", "screenshot.png", "**.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# The notebooks are shown as committed, with their stored outputs: never executed here.
nb_execution_mode = "off"
nb_merge_streams = True

html_theme = "furo"
html_static_path = ["_static"]
html_copy_source = False
html_show_sourcelink = False
html_show_copyright = False
# Maths is written out as MathML when the site is built (course_site.py), so no MathJax is loaded.
html_math_renderer = "mathml"
