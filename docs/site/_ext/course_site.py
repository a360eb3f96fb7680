"""Two things the course's site needs that Sphinx and MyST-NB do not do by themselves.

- Maths as MathML, written when the site is built (by latex2mathml), so that a page loads no
  MathJax from the internet: browsers draw MathML themselves.
- Alternative text for a notebook's image output from the output's own metadata,
  `{"image/png": {"alt": "..."}}` (what `IPython.display.display(fig, metadata=...)` and
  `IPython.display.Image(..., alt=...)` store, what nbconvert's HTML reads, and where
  tools/figure_alt.py stores the texts of docs/figure_alt.json). MyST-NB reads alt
  text only from the cell's metadata (`"mystnb": {"image": {"alt": "..."}}`), which still works.
  An image output with neither gets NO_ALT_TEXT and the class `missing-alt` (docutils would
  otherwise use the image's file name, a hash, which a screen reader would read out).
"""

from docutils import nodes
from latex2mathml.converter import convert
from myst_nb.core.render import NbElementRenderer


def _visit_inline_math(translator, node):
    translator.body.append(convert(node.astext()))
    raise nodes.SkipNode


def _visit_block_math(translator, node):
    translator.body.append(f'<div class="math">{convert(node.astext(), display="block")}</div>')
    raise nodes.SkipNode


NO_ALT_TEXT = "figure (no description yet)"
_render_image = NbElementRenderer.render_image


def _render_image_with_output_alt(renderer, data):
    image_nodes = _render_image(renderer, data)
    alt = data.output_metadata.get(data.mime_type, {}).get("alt")
    for image in image_nodes:
        if alt and "alt" not in image:
            image["alt"] = str(alt)
        if not image.get("alt"):
            image["alt"] = NO_ALT_TEXT
            image["classes"].append("missing-alt")
    return image_nodes


def setup(app):
    app.add_html_math_renderer("mathml", (_visit_inline_math, None), (_visit_block_math, None))
    NbElementRenderer.render_image = _render_image_with_output_alt
    return {"parallel_read_safe": True, "parallel_write_safe": True}
