"""The SPaR self-play loop: one resumable command for every iteration.

    spar run --config configs/cpu-smollm2.yaml

Iteration t, with actor M_t and refiner R_t (both start from the same model):
  1. sample k responses per instruction (actor)        iter_t/responses.jsonl
     judge each n times (refiner, majority)            iter_t/judgments.jsonl
     select one negative per instruction               iter_t/negatives.jsonl
  2. tree-search refinement of every negative          iter_t/trees.jsonl
  3. pairs (chosen = refinement, rejected = root)      iter_t/pairs.jsonl
     refiner data (RFT)                                iter_t/rft.jsonl
     DPO -> M_{t+1}, RFT -> R_{t+1}                    iter_t/actor/, iter_t/refiner/
  evaluate M_{t+1} on held-out instructions (and IFEval data if given).

The manifest records each finished stage; kill the run anywhere and rerun
the same command: finished stages are skipped, a stage cut short resumes
from its last whole chunk.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

from spar.config import ABSENT, RunConfig, dump_config, load_config, resume_changes
from spar.errors import UserError
from spar.records import (Instruction, Judgment, Negative, Pair, Response, RFTExample, Tree, read_instructions,
                          read_jsonl, write_jsonl)
from spar.selfplay.rundir import RunDir, Timer


def _bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False)


class Loop:
    def __init__(self, cfg: RunConfig, fork_from: str | Path | None = None):
        self.cfg = cfg
        self.rd = RunDir(Path(cfg.out_dir) / cfg.name)
        self.fork_from = fork_from  # a run whose stages before iteration 0 this one starts from (selfplay/fork.py)
        self._backends: dict = {}

    # ---- models -------------------------------------------------------------------

    # Engine lifecycle. A generation engine is opened by the first stage that needs it and kept while the next
    # stages use the same one: base eval -> sample (the actor), judge -> negatives -> search (the refiner), eval of
    # M_{t+1} -> sample of iteration t+1. Every generating stage first closes the engines it does not use (`use`),
    # and training starts with none open (`release_models`): on a GPU a vLLM engine reserves most of each card,
    # so two engines, or an engine and a ZeRO-3 job, do not fit side by side. One engine per stage also means
    # iteration t's engines are gone before iteration t+1's open.

    def _key(self, role: str, name: str) -> tuple:
        from spar.backends import resolve

        mc = self.cfg.actor if role == "actor" else self.cfg.refiner
        return resolve(mc.backend), name, json.dumps(mc.engine_options(), sort_keys=True, default=str)

    def backend(self, role: str, name: str):
        """The open engine of `role` on model `name`, opened now if there is none. Engines are keyed by backend,
        model and settings, so actor and refiner on one model with the same settings share one engine (as in
        iteration 0): the model is loaded once. (With different settings each role gets its own engine, never
        both open at once; hf backends still share the weights through `load_model`.)"""
        from spar.backends import make_backend

        key = self._key(role, name)
        if key not in self._backends:
            kind, _, options = key
            self._backends[key] = make_backend(kind, name, **json.loads(options))
        return self._backends[key]

    def use(self, *engines: tuple[str, str]) -> None:
        """Start a stage that generates with `engines`, (role, model) pairs: close every other open engine first."""
        self.release_models(keep=engines)

    def release_models(self, keep: tuple[tuple[str, str], ...] = ()) -> None:
        """Close every open engine except those of the (role, model) pairs in `keep`, and free their memory."""
        kept = {self._key(role, name) for role, name in keep}
        dropped = [k for k in self._backends if k not in kept]
        for k in dropped:
            self._backends.pop(k).close()
        if dropped:
            from spar.models import free_memory

            free_memory()

    def judge(self, refiner_name: str):
        from spar.judge import judge_from_config

        backend = None if self.cfg.judge.kind == "verifier" else self.backend("refiner", refiner_name)
        return judge_from_config(self.cfg.judge, backend, self.cfg.seed)

    def models_for(self, t: int) -> tuple[str, str]:
        """Actor and refiner at the start of iteration t: the checkpoints iteration t-1 wrote, if any."""
        actor, refiner = self.cfg.actor.name, self.cfg.refiner.name
        if self.cfg.bootstrap.enabled:  # iteration 0 starts from the bootstrap's checkpoints (SPaR-SFT)
            actor = self.rd.stage("bootstrap", "train_actor").get("model", actor)
            refiner = self.rd.stage("bootstrap", "train_refiner").get("model", refiner)
        for s in range(t):
            actor = self.rd.stage(s, "train_actor").get("model", actor)
            refiner = self.rd.stage(s, "train_refiner").get("model", refiner)
        return actor, refiner

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> dict:
        try:
            return self._run()
        finally:
            self.release_models()  # done or interrupted: no engine (or its processes) outlives the run

    def _run(self) -> dict:
        cfg, rd = self.cfg, self.rd
        self._check_inputs()
        if self.fork_from:
            from spar.selfplay.fork import fork

            fork(self.fork_from, rd, cfg)
        changes = self._check_config()
        rd.verify()  # a finished stage's file edited since is reported before anything reads it
        instructions = self._instructions()
        self._write_config(changes)  # only now: every setting and input has been checked
        if not rd.done("base", "instructions"):
            rd.record("base", "instructions", file=rd.root / "instructions.jsonl", count=len(instructions))
        if all(rd.done(t, "eval") for t in range(cfg.iterations)):
            print(f"run {rd.root} is already complete ({cfg.iterations} iterations); nothing to do", file=sys.stderr)
            return self.summary()
        by_id = {i.id: i for i in instructions}
        heldout = [i for i in instructions if i.split == "heldout"][: cfg.eval.heldout]
        train = [i for i in instructions if i.split != "heldout"]
        if not rd.done("base", "eval"):
            with Timer() as tm:
                scores = self._evaluate(cfg.actor.name, heldout, rd.root / "eval_base")
            rd.record("base", "eval", scores=scores, seconds=tm.seconds)
        if cfg.bootstrap.enabled:
            self._bootstrap(train, heldout)
        for t in range(cfg.iterations):
            self._iteration(t, train, by_id, heldout)
        return self.summary()

    def _check_inputs(self) -> None:
        """Every file the run will read, checked now: a bad path or line must not surface after hours of compute."""
        cfg = self.cfg
        if cfg.data.source != "synth" and not Path(cfg.data.source).is_file():
            raise FileNotFoundError(f"data.source={cfg.data.source}: file not found; give a JSONL file of Instruction "
                                    f"records ({{id, prompt, constraints, source, split}}) or `synth`")
        if cfg.eval.ifeval_data:
            from spar.data.ifeval_rows import load_ifeval

            load_ifeval(cfg.eval.ifeval_data)  # names file:line of a malformed row
        if cfg.data.leak_check and not Path(cfg.data.leak_check).exists():
            raise FileNotFoundError(f"data.leak_check={cfg.data.leak_check}: file not found")
        # the run writes into its directory: an input kept there could be overwritten by the run's own files
        root = self.rd.root.resolve()
        for key, value in (("data.source", cfg.data.source if cfg.data.source != "synth" else None),
                           ("eval.ifeval_data", cfg.eval.ifeval_data), ("data.leak_check", cfg.data.leak_check)):
            if value and not value.startswith("hf:") and root in Path(value).resolve().parents:
                raise UserError(f"{key}={value}: inside the run directory {self.rd.root}, where the run writes its "
                                f"own files; move it out, or give the run another name=")
        from spar.backends import check_options, resolve
        from spar.models import check_model_name

        for role in ("actor", "refiner"):  # before any model loads: an unknown option would fail only then
            mc = getattr(cfg, role)
            check_options(mc.backend, mc.options, f"{role}.options")
            if resolve(mc.backend) in ("hf", "vllm"):  # an openai server names its models as it likes
                check_model_name(mc.name, f"{role}.name")
        if cfg.eval.soft_judge and cfg.eval.soft_judge_model and resolve(cfg.refiner.backend) in ("hf", "vllm"):
            check_model_name(cfg.eval.soft_judge_model, "eval.soft_judge_model")
        for key, s in (("train.dpo", cfg.train.dpo), ("train.rft", cfg.train.rft)):
            if s.accelerate_config and not Path(s.accelerate_config).exists():
                raise FileNotFoundError(f"{key}.accelerate_config={s.accelerate_config}: file not found (relative "
                                        f"paths start where spar runs; configs/accelerate/ holds zero3.yaml and "
                                        f"fsdp.yaml)")

    def _check_config(self) -> dict:
        """Compare with the config the run was started with: the changes accepted (see RESUME_SAFE in
        spar/config.py), or a refusal naming each key that could change results, with both values."""
        path = self.rd.root / "config.yaml"
        if not path.exists():
            return {}
        try:
            old = load_config(path)
        except (UserError, FileNotFoundError) as e:
            raise UserError(f"{path}: the config this run was started with no longer loads ({e}); "
                            f"start a new run with name=<new name>") from None
        started = len(list(self.rd.root.glob("iter_*")))
        accepted, refused = resume_changes(old, self.cfg, started)
        if refused:
            listed = "; ".join(f"{k}: {_shown(a)} -> {_shown(b)}" for k, (a, b) in refused.items())
            raise UserError(f"{path}: this run was started with a different config, and these settings change its "
                            f"results ({listed}); resume it with the same config and overrides, or start a new run "
                            f"with name=<new name>")
        return accepted

    def _write_config(self, changes: dict) -> None:
        path = self.rd.root / "config.yaml"
        if changes:
            self.rd.note_config_change(changes)
            print(f"resuming {self.rd.root} with changed settings that do not change its results: "
                  + ", ".join(f"{k} {_shown(a)} -> {_shown(b)}" for k, (a, b) in changes.items()), file=sys.stderr)
        text = dump_config(self.cfg)
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name("config.yaml.tmp")
            tmp.write_text(text)
            tmp.replace(path)

    def _instructions(self) -> list[Instruction]:
        cfg, path = self.cfg, self.rd.root / "instructions.jsonl"
        if not path.exists():
            if cfg.data.source == "synth":
                from spar.data.synth import synthesize

                instructions = synthesize(cfg.data.n, cfg.seed, cfg.data.heldout, heldout_kinds=cfg.data.heldout_kinds)
            else:
                from spar.constraints import get, is_soft

                instructions = read_instructions(cfg.data.source)  # unique ids, well-formed fields, or file:line
                # file line of each record (blank lines are skipped by the reader)
                lines = [n for n, raw in enumerate(Path(cfg.data.source).read_bytes().split(b"\n"), 1) if raw.strip()]
                for lineno, inst in zip(lines, instructions):
                    for c in inst.constraints:
                        if not is_soft(c["id"]):
                            try:
                                get(c["id"]).validate(c.get("kwargs"))
                            except (KeyError, ValueError) as e:
                                raise UserError(f"{cfg.data.source}:{lineno}: {e.args[0]}") from None
            from spar.data.contamination import guard_training_data

            # training data that copies the evaluation's prompts would measure memorising, not following
            guard_training_data(instructions, {"data.leak_check": cfg.data.leak_check,
                                               "eval.ifeval_data": cfg.eval.ifeval_data},
                                cfg.data.contamination_n, cfg.data.max_contamination)
            write_jsonl(path, instructions)
        return read_jsonl(path, Instruction)

    def _iteration(self, t: int, train: list[Instruction], by_id: dict, heldout: list[Instruction]) -> None:
        from spar.selfplay.collect import judge_responses, sample_responses, search_negatives, select_negatives
        from spar.selfplay.pairs import refinement_pairs, sampled_pairs
        from spar.selfplay.rft_data import build_rft

        cfg, rd = self.cfg, self.rd
        d = rd.iter_dir(t)
        actor_name, refiner_name = self.models_for(t)
        if cfg.data.per_iteration and cfg.data.per_iteration < len(train):
            train = random.Random(cfg.seed + t).sample(train, cfg.data.per_iteration)
        seed = cfg.seed + 1000 * t

        if not rd.done(t, "sample"):
            self.use(("actor", actor_name))
            with Timer() as tm, _bar(len(train), f"iter {t} sample") as bar:
                sample_responses(train, self.backend("actor", actor_name), cfg.sample, seed, d / "responses.jsonl",
                                 cfg.chunk, bar.update)
            sampled = read_jsonl(d / "responses.jsonl", Response)
            rd.record(t, "sample", file=d / "responses.jsonl", count=len(sampled), seconds=tm.seconds,
                      truncated=sum(r.truncated for r in sampled))
        responses = read_jsonl(d / "responses.jsonl", Response)

        if not rd.done(t, "judge"):
            self.use(*([("refiner", refiner_name)] if cfg.judge.kind != "verifier" else []))  # code alone: no model
            judge = self.judge(refiner_name)
            with Timer() as tm, _bar(len(train), f"iter {t} judge") as bar:
                judge_responses(by_id, responses, judge, d / "judgments.jsonl", cfg.chunk, bar.update)
            judgments = read_jsonl(d / "judgments.jsonl", Judgment)
            rd.record(t, "judge", file=d / "judgments.jsonl", count=len(judgments), seconds=tm.seconds,
                      labels={k: sum(j.label == k for j in judgments) for k in ("yes", "no", "abstain")})
        judgments = read_jsonl(d / "judgments.jsonl", Judgment)

        if not rd.done(t, "negatives"):
            with Timer() as tm:
                negatives = select_negatives(responses, judgments, seed)
                write_jsonl(d / "negatives.jsonl", negatives)
            rd.record(t, "negatives", file=d / "negatives.jsonl", count=len(negatives), seconds=tm.seconds,
                      instructions=len({r.instruction_id for r in responses}))
        negatives = read_jsonl(d / "negatives.jsonl", Negative)

        if not rd.done(t, "search"):
            self.use(("refiner", refiner_name))
            judge = self.judge(refiner_name)
            with Timer() as tm, _bar(len(negatives), f"iter {t} search ({cfg.search.strategy})") as bar:
                search_negatives(negatives, by_id, self.backend("refiner", refiner_name), judge, cfg.search, seed,
                                 d / "trees.jsonl", cfg.chunk, bar.update)
            trees = read_jsonl(d / "trees.jsonl", Tree)
            rd.record(t, "search", file=d / "trees.jsonl", count=len(trees), succeeded=sum(x.success for x in trees),
                      refinements=sum(x.calls.get("refine", 0) for x in trees), seconds=tm.seconds,
                      truncated=sum(bool(n.get("truncated")) for x in trees for n in x.nodes[1:]))  # refinements
        trees = read_jsonl(d / "trees.jsonl", Tree)

        if not rd.done(t, "pairs"):
            with Timer() as tm:
                cut: dict[str, int] = {}
                pairs = (refinement_pairs(trees, by_id, cfg.pairs.accept_truncated, counts=cut)
                         + sampled_pairs(responses, judgments, negatives, by_id, seed, cfg.pairs.accept_truncated,
                                         counts=cut))
                write_jsonl(d / "pairs.jsonl", pairs)
            by_source = {}
            for source in ("refinement", "sampled"):
                mine = [p for p in pairs if p.source == source]
                by_source[f"{source}_pairs"] = len(mine)
                by_source[f"{source}_edit_distance"] = _mean([p.edit_distance for p in mine])
            rd.record(t, "pairs", file=d / "pairs.jsonl", count=len(pairs), seconds=tm.seconds,
                      truncated_skipped=cut.get("truncated", 0), **by_source)
        pairs = read_jsonl(d / "pairs.jsonl", Pair)

        if not rd.done(t, "rft"):
            with Timer() as tm:
                left_out: dict[str, int] = {}
                examples = build_rft(trees, judgments, responses, by_id, cfg.rft_data, cfg.judge.kind, seed,
                                     prefill=cfg.search.prefill, counts=left_out)
                write_jsonl(d / "rft.jsonl", examples)
            rd.record(t, "rft", file=d / "rft.jsonl", count=len(examples), seconds=tm.seconds,
                      refine=sum(e.kind == "refine" for e in examples), judge=sum(e.kind == "judge" for e in examples),
                      **{f"judge_{lab}": sum(e.kind == "judge" and e.label == lab for e in examples)
                         for lab in ("yes", "no")},
                      by_source={f"{s}/{lab}": sum(e.source == s and e.label == lab for e in examples)
                                 for s in ("tree-node", "judge-stage") for lab in ("yes", "no")},
                      truncated_skipped=left_out.get("truncated", 0), duplicates=left_out.get("duplicates", 0))
        examples = read_jsonl(d / "rft.jsonl", RFTExample)

        if not rd.done(t, "train_actor"):
            train_pairs = [p for p in pairs if p.source == cfg.pairs.train_on]
            if cfg.pairs.max_train and len(train_pairs) > cfg.pairs.max_train:  # matched budgets across ablations
                train_pairs = random.Random(seed).sample(train_pairs, cfg.pairs.max_train)
            info = {"model": actor_name, "trained": False}
            if cfg.train.actor and train_pairs:
                from spar.models import model_dir
                from spar.train.dpo import train_dpo

                subset = d / "pairs_train.jsonl"  # what the actor trained on: pairs.train_on, capped by max_train
                write_jsonl(subset, train_pairs)
                self.release_models()
                print(f"iter {t} train actor (DPO): {len(train_pairs)} pairs", file=sys.stderr)
                with Timer() as tm:
                    out = train_dpo(model_dir(actor_name), train_pairs, d / "actor", cfg.train.dpo, data_file=subset)
                info = {"model": str(out), "trained": True, "pairs": len(train_pairs), "seconds": tm.seconds,
                        "sha256": _weights_checksum(out),
                        "metrics": json.loads((out / "train_metrics.json").read_text())}
            rd.record(t, "train_actor", **info)

        if not rd.done(t, "train_refiner"):
            info = {"model": refiner_name, "trained": False}
            if cfg.train.refiner and examples:
                from spar.models import model_dir
                from spar.train.rft import train_rft

                self.release_models()
                print(f"iter {t} train refiner (RFT): {len(examples)} examples", file=sys.stderr)
                with Timer() as tm:
                    out = train_rft(model_dir(refiner_name), examples, d / "refiner", cfg.train.rft,
                                    data_file=d / "rft.jsonl")
                info = {"model": str(out), "trained": True, "examples": len(examples), "seconds": tm.seconds,
                        "sha256": _weights_checksum(out),
                        "metrics": json.loads((out / "train_metrics.json").read_text())}
            rd.record(t, "train_refiner", **info)

        if not rd.done(t, "eval"):
            actor_next = rd.stage(t, "train_actor")["model"]
            with Timer() as tm:
                scores = self._evaluate(actor_next, heldout, d / "eval")
            rd.record(t, "eval", scores=scores, seconds=tm.seconds)
            from spar.report import update_run_report  # a face, imported late: a failure only warns

            update_run_report(rd.root)  # runs/<name>/report.html, rewritten after every iteration

    def _bootstrap(self, train: list[Instruction], heldout: list[Instruction]) -> None:
        """The bootstrap stages (spar/selfplay/bootstrap.py): data, train_actor, train_refiner, eval; each recorded
        under "bootstrap" in the manifest and skipped on resume once done."""
        from spar.selfplay import bootstrap as B

        cfg, rd, b = self.cfg, self.rd, self.cfg.bootstrap
        d = rd.root / "bootstrap"
        d.mkdir(parents=True, exist_ok=True)
        if not rd.done("bootstrap", "data"):
            from spar.backends.base import SamplingParams

            items = B.pick(train, b.n, cfg.seed)
            self.use(("actor", cfg.actor.name))
            counts: dict[str, int] = {}
            with Timer() as tm:
                s = cfg.sample
                answers = B.sample_answers(items, self.backend("actor", cfg.actor.name), SamplingParams(
                    n=s.k, temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens, seed=cfg.seed,
                    repetition_penalty=s.repetition_penalty))
                hybrid = cfg.judge.kind == "hybrid"
                if b.teacher is not None:
                    from spar.backends import make_backend

                    self.release_models()
                    teacher = make_backend("openai", b.teacher.model, base_urls=[b.teacher.base_url],
                                           api_key_env=b.teacher.api_key_env)
                    try:
                        actor_ex, refiner_ex = B.teacher_data(items, answers, teacher, b.max_new_tokens, hybrid,
                                                              cfg.search.prefill, counts)
                    finally:
                        teacher.close()
                else:
                    actor_ex, refiner_ex = B.teacher_free_data(items, answers, hybrid, cfg.search.prefill, counts,
                                                               b.per_instruction)
                write_jsonl(d / "actor_sft.jsonl", actor_ex)
                write_jsonl(d / "refiner_sft.jsonl", refiner_ex)
            rd.record("bootstrap", "data", file=d / "refiner_sft.jsonl", count=len(refiner_ex),
                      actor_examples=len(actor_ex), instructions=len(items), seconds=tm.seconds,
                      teacher=b.teacher.model if b.teacher else None, skipped=counts,
                      **{f"refiner_{k}": sum(e.kind == k for e in refiner_ex) for k in ("judge", "refine")})
        for role, flag, base, name in (("actor", b.actor, cfg.actor.name, "actor_sft.jsonl"),
                                       ("refiner", b.refiner, cfg.refiner.name, "refiner_sft.jsonl")):
            stage = f"train_{role}"
            if rd.done("bootstrap", stage):
                continue
            examples = read_jsonl(d / name, RFTExample)
            info = {"model": base, "trained": False}
            if flag and examples:
                from spar.models import model_dir
                from spar.train.rft import train_rft

                self.release_models()
                print(f"bootstrap: SFT of the {role} on {len(examples)} examples", file=sys.stderr)
                with Timer() as tm:
                    out = train_rft(model_dir(base), examples, d / role, b.train, data_file=d / name)
                info = {"model": str(out), "trained": True, "examples": len(examples), "seconds": tm.seconds,
                        "sha256": _weights_checksum(out),
                        "metrics": json.loads((out / "train_metrics.json").read_text())}
            rd.record("bootstrap", stage, **info)
        if not rd.done("bootstrap", "eval"):
            actor, _ = self.models_for(0)
            with Timer() as tm:
                scores = self._evaluate(actor, heldout, d / "eval") if heldout else {}
            rd.record("bootstrap", "eval", scores=scores, seconds=tm.seconds)

    def _evaluate(self, actor_name: str, heldout: list[Instruction], out_dir: Path) -> dict:
        """Scores of `actor_name`. Soft constraints (eval.soft_judge) are judged by one fixed model in every
        evaluation (eval.soft_judge_model, else the starting refiner), so scores compare across iterations."""
        from spar.selfplay.evaluate import heldout_scores, ifeval_scores

        from spar.constraints import is_soft

        soft = self.cfg.eval.soft_judge and any(is_soft(c["id"]) for i in heldout for c in i.constraints)
        judge_name = self.cfg.eval.soft_judge_model or self.cfg.refiner.name
        self.use(("actor", actor_name))
        actor = self.backend("actor", actor_name)

        def open_judge():
            """Soft constraints need an LLM: the loop's judge settings, as an LLM judge, on the fixed model. Opened
            once the actor has answered, and the actor's engine closed first: one engine at a time (on GPUs a
            second vLLM engine does not fit beside the first)."""
            from spar.judge import judge_from_config

            self.use(("refiner", judge_name))
            return judge_from_config(self.cfg.judge, self.backend("refiner", judge_name), self.cfg.seed, kind="llm")

        print(f"evaluate {actor_name}: {len(heldout)} held-out instructions"
              + (f" + IFEval data {self.cfg.eval.ifeval_data}" if self.cfg.eval.ifeval_data else ""), file=sys.stderr)
        ev = self.cfg.eval
        ifeval = ifeval_scores(actor, ev.ifeval_data, ev.ifeval_limit, ev.max_new_tokens, out_dir,
                               ev.repetition_penalty) if ev.ifeval_data else {}  # first: the actor answers all
        scores = heldout_scores(actor, heldout, ev.max_new_tokens, out_dir, self.cfg.data.heldout_kinds,
                                open_judge if soft else None, ev.repetition_penalty) if heldout else {}
        return {**scores, **ifeval}

    # ---- report ---------------------------------------------------------------------

    def summary(self) -> dict:
        rd = self.rd
        rows = []
        for t in range(self.cfg.iterations):
            if not rd.done(t, "eval"):
                break
            search, pairs = rd.stage(t, "search"), rd.stage(t, "pairs")
            rows.append({
                "iteration": t,
                "negatives": rd.stage(t, "negatives").get("count", 0),
                "search_success": search.get("succeeded", 0) / max(1, search.get("count", 0)),
                "refinement_pairs": pairs.get("refinement_pairs", 0),
                "sampled_pairs": pairs.get("sampled_pairs", 0),
                "edit_distance_refined": pairs.get("refinement_edit_distance"),
                "edit_distance_sampled": pairs.get("sampled_edit_distance"),
                "rft_examples": rd.stage(t, "rft").get("count", 0),
                # completions cut by max_new_tokens: sampled responses and refinements
                "truncated_responses": rd.stage(t, "sample").get("truncated", 0),
                "truncated_refinements": search.get("truncated", 0),
                "scores": rd.stage(t, "eval").get("scores", {}),
            })
        boot = rd.stage("bootstrap", "eval").get("scores") if rd.done("bootstrap", "eval") else None
        return {"run": str(rd.root), "before": rd.stage("base", "eval").get("scores", {}), "bootstrap": boot,
                "iterations": rows}


def _shown(value) -> str:
    return value if value == ABSENT else repr(value)


def _weights_checksum(model_dir: Path) -> str:
    """sha256 over a checkpoint's weight files, in name order."""
    h = hashlib.sha256()
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        h.update(f.read_bytes())
    return h.hexdigest()


def _mean(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return round(sum(xs) / len(xs), 2) if xs else None


def format_summary(s: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}"

    def scores(sc: dict) -> str:
        # all held-out prompts, then the split that says what generalises: seen kinds in new wording, unseen kinds
        return (f"{pct(sc.get('heldout_prompt_level')):>15} {pct(sc.get('heldout_inst_level')):>13} "
                f"{pct(sc.get('heldout_seen_prompt_level')):>6} {pct(sc.get('heldout_unseen_prompt_level')):>7}")

    blank = f"{'':>9} {'':>8} {'':>6} {'':>8} {'':>9} {'':>9} {'':>5} {'':>8} {'':>8}"
    lines = [f"SPaR run {s['run']}",
             f"{'iter':>4} {'negatives':>9} {'success':>8} {'pairs':>6} {'sampled':>8} {'edit(ref)':>9} "
             f"{'edit(smp)':>9} {'rft':>5} {'cut(smp)':>8} {'cut(ref)':>8} {'heldout prompt':>15} {'heldout inst':>13} "
             f"{'seen':>6} {'unseen':>7}"]
    before = s["before"]
    lines.append(f"{'base':>4} {blank} {scores(before)}")
    if s.get("bootstrap") is not None:
        lines.append(f"{'boot':>4} {blank} {scores(s['bootstrap'])}")
    for r in s["iterations"]:
        lines.append(f"{r['iteration']:>4} {r['negatives']:>9} {pct(r['search_success']):>8} "
                     f"{r['refinement_pairs']:>6} {r['sampled_pairs']:>8} {r['edit_distance_refined'] or '-':>9} "
                     f"{r['edit_distance_sampled'] or '-':>9} {r['rft_examples']:>5} "
                     f"{r.get('truncated_responses', 0):>8} {r.get('truncated_refinements', 0):>8} "
                     f"{scores(r['scores'])}")
    if "ifeval_average" in before:
        last = s["iterations"][-1]["scores"] if s["iterations"] else {}
        lines.append(f"IFEval average: before {pct(before.get('ifeval_average'))}, "
                     f"after {pct(last.get('ifeval_average'))}")
    return "\n".join(lines)
