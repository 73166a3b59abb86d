"""The paper's experiments, each run by `spar experiment NAME` (see spar/commands/experiment.py).

* scaling - decoding scaling (the paper's Figure 5): greedy, best-of-N, BFS and DFS under budgets of
  generated responses, scored by the verifier (and IFEval when IFEval-format data is given).
* refinement-accuracy (module refinement_accuracy) - refinement accuracy (the paper's Tables 3/10): a run's
  refinements judged again by a judge of your choice, next to the verifier's verdict.
* interfering-factors (module interfering_factors) - interfering factors (the paper's Figure 4): DPO on minimal
  pairs vs pairs that also differ in interfering factors, the target factor tracked over the training steps.
"""

# name -> one-line help; the module spar.experiments.<name with - as _> defines add_arguments(parser) and run(args)
EXPERIMENTS = {
    "scaling": "decoding scaling (paper Fig. 5): greedy, best-of-N, BFS, DFS at budgets of generated responses",
    "refinement-accuracy": "refinement accuracy (paper Tables 3/10): a run's refinements judged again, next to "
                           "the verifier",
    "interfering-factors": "interfering factors (paper Fig. 4): DPO on minimal vs interfering pairs, the target "
                           "factor over training steps",
}


def save_result(out, stem: str, result: dict, text: str, draw) -> None:
    """What every experiment leaves in `out`: <stem>.json (the result), table.txt (the printed table) and
    <stem>.svg (drawn by `draw(path)`); the table and where the files went are printed."""
    import json
    from pathlib import Path

    out = Path(out)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (out / "table.txt").write_text(text + "\n")
    draw(out / f"{stem}.svg")
    print(text)
    print(f"({result['seconds']:.0f}s; {stem}.json, table.txt and {stem}.svg in {out})")
