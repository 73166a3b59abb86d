"""spar-llm: SPaR, self-play with tree-search refinement (Cheng et al., arXiv 2412.11605).

`import spar` is light: torch, transformers, vllm and http clients are
imported by the modules that need them, when they are used.
"""

__version__ = "0.1.0"
