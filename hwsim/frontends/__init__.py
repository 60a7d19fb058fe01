"""Conversions between hwsim graphs and other model formats (no arithmetic here).

:func:`hwsim.frontends.onnx_export.export_onnx` writes a float graph as ONNX; optional dependencies (onnx) are
imported only when a conversion runs.
"""
