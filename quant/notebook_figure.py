"""Plotly figures that still show where plotly cannot run.

A notebook that shows a plotly figure keeps it as plotly's JSON, which JupyterLab draws and
GitHub, nbviewer and exported HTML show as nothing. `NotebookFigure` adds a static picture
beside it: a PNG drawn with matplotlib from the figure's own traces (lines, bars, histograms,
heatmaps), and the same PNG as an `<img>` for renderers that prefer HTML. No browser, no
network and no extra package are needed to make it.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go


class NotebookFigure(go.Figure):
    """A plotly figure whose notebook output carries a static PNG fallback."""

    def _repr_mimebundle_(self, include=None, exclude=None, validate=True, **kwargs):
        bundle = dict(super()._repr_mimebundle_(include, exclude, validate, **kwargs) or {})
        png = static_png(self)
        encoded = base64.b64encode(png).decode()
        bundle.setdefault("application/vnd.plotly.v1+json", self.to_plotly_json())
        bundle["image/png"] = encoded
        bundle["text/html"] = (f'<img src="data:image/png;base64,{encoded}" '
                               f'alt="{_title(self) or "figure"}"/>')
        return bundle

    def _ipython_display_(self):
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)


def shown(named: list[tuple[str, go.Figure]]) -> dict[str, NotebookFigure]:
    """Figures by name, each with its static fallback (what `figures()` methods give)."""
    return {name: NotebookFigure(fig) for name, fig in named}


def static_png(fig: go.Figure, width: float = 9.0, height: float = 4.0) -> bytes:
    """The figure's traces drawn by matplotlib, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(width, height), dpi=90)
    try:
        for trace in fig.data:
            _draw(axes, trace)
        axes.set_title(_title(fig) or "", fontsize=10)
        if any(getattr(t, "name", None) for t in fig.data) and len(fig.data) > 1:
            axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(figure)


def _draw(axes, trace) -> None:
    kind, name = trace.type, getattr(trace, "name", None)
    if kind == "heatmap":
        z = np.asarray(trace.z, dtype=float)
        image = axes.imshow(z, aspect="auto", cmap="RdYlGn")
        if trace.x is not None:
            axes.set_xticks(range(len(trace.x)), [str(v) for v in trace.x], fontsize=7)
        if trace.y is not None:
            axes.set_yticks(range(len(trace.y)), [str(v) for v in trace.y], fontsize=7)
        axes.figure.colorbar(image, ax=axes)
    elif kind == "histogram":
        axes.hist(np.asarray(trace.x, dtype=float), bins=40, label=name)
    elif kind == "bar":
        labels = [str(v) for v in trace.x]
        errors = trace.error_y.array if trace.error_y and trace.error_y.array is not None else None
        axes.bar(labels, np.asarray(trace.y, dtype=float), yerr=errors, label=name)
        if len(labels) > 12:
            axes.set_xticks(axes.get_xticks()[::max(1, len(labels) // 12)])
    elif kind == "scatter":
        style = "o" if trace.mode == "markers" else "-"
        axes.plot(list(trace.x), np.asarray(trace.y, dtype=float), style, label=name,
                  markersize=3)


def _title(fig: go.Figure) -> str | None:
    return fig.layout.title.text if fig.layout.title else None
