"""The paper's experiments, each run by `spar experiment NAME` (see spar/commands/experiment.py).

* scaling - decoding scaling (the paper's Figure 5): greedy, best-of-N, BFS and DFS under budgets of
  generated responses, scored by the verifier (and IFEval when IFEval-format data is given).
"""

# name -> one-line help; the module spar.experiments.<name> defines add_arguments(parser) and run(args)
EXPERIMENTS = {
    "scaling": "decoding scaling (paper Fig. 5): greedy, best-of-N, BFS, DFS at budgets of generated responses",
}
