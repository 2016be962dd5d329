"""Readers turn files into tables; adapters turn tables into model inputs and targets."""
