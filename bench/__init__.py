"""Benchmarks: ``python -m bench [suite ...] [--threads N]``.

Every figure is a ratio against torch measured in the same run, with numpy and
torch on the same number of threads (1 by default). This package imports
nothing heavy: ``bench/__main__.py`` must set the thread environment variables
before numpy or torch is loaded.
"""
