"""Readers turn files into tables; adapters (one per kind of data) turn tables into model inputs and targets.

The adapters register themselves when :mod:`seqclf.data.adapters` first needs them (see
``KIND_MODULES`` there), so reading a file or serving a model does not import the training side.
"""
