"""Architectures (the registry), custom layers and the model builders."""
