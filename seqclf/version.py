"""The version of seqclf, in one place (setup.cfg and the run directories read it)."""

__version__ = "0.1.0"
