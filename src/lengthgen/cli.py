"""The `lengthgen` command line: train, eval, run, report, runs, export, tasks, predict, probe, attention,
position-head, demo."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import traceback
from pathlib import Path

from .version import __version__
from .config import (MAX_EXAMPLES, MAX_LENGTH, MAX_SEED, ConfigError, check_device, load_run_config, merged,
                     parse_yaml, read_yaml)
from .errors import InputError
from .experiments.presets import find_preset
from .progress import DEFAULT_INTERVAL_S, BarProgress, PlainLines, Progress

DEFAULT_ROOT = "lengthgen-runs"


# Kept in step with model.positional.SCHEMES and training.TRACKERS by tests: reading them here would
# import torch for --help.
POSITIONAL_SCHEMES = ("abacus", "alibi", "ape", "fire", "nope", "randomized", "rope", "sinusoidal", "t5")
TRACKERS = ("tensorboard",)
BUG_REPORT = ("lengthgen: this is a bug in lengthgen, not a problem with your input; please report it to the "
              "lengthgen maintainers with the command and the traceback above")
WIDE = 10_000  # columns of a console that is not a terminal: tables are never cut


def _progress(args) -> Progress:
    """A bar on a terminal; plain lines every --log-every seconds when output goes to a file or a pipe."""
    return BarProgress() if sys.stdout.isatty() else PlainLines(args.log_every)


def _tracker(args):
    """The --tracker, writing under the results root; None without one."""
    from .training import make_tracker

    return make_tracker(args.tracker, args.root) if args.tracker else None


def _console():
    """A rich console: the terminal's width, or, redirected, wide enough that no cell is cut to `…`."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=WIDE)


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE (dotted key, YAML value), got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_yaml(v, f"--set {k.strip()}")
    return out


def _parse_bins(text: str) -> list[list[int]]:
    bins = []
    for part in text.split(","):
        try:
            lo, hi = (int(x) for x in part.split("-"))
        except ValueError:
            raise ConfigError(f"--bins expects LO-HI[,LO-HI...], got {text!r}") from None
        bins.append([lo, hi])
    return bins


def _whole(lo: int, hi: int):
    """An argparse type: a whole number in [lo, hi]; argparse names the flag and exits 2 otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = lo - 1
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {lo} and <= {hi:,}, got {text!r}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _root(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty name")
    return text


def _formats(text: str) -> tuple[str, ...]:
    from .report.plots import check_formats

    try:
        return check_formats(tuple(f.strip().lower() for f in text.split(",") if f.strip()))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


MAX_COUNT = 10_000  # documents, candidates, targets and re-ranked candidates of a probe
MAX_PROCESSES = 1024  # workers and threads


def cmd_train(args):
    from .store import ResultsStore
    from .training import train_run

    data = read_yaml(args.config) if args.config else {}
    overrides = _parse_set(args.set)
    for flag, key in [("task", "task.name"), ("positional", "model.positional"), ("seed", "seed"),
                      ("steps", "train.steps"), ("name", "name")]:
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    if args.bins:
        overrides["task.eval_bins"] = _parse_bins(args.bins)
    data = merged(data, overrides)
    if "task" not in data:
        raise ConfigError("no task given: use --task NAME or a --config file with a 'task' section")
    cfg = load_run_config(data)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), end="")
        return 0
    store = ResultsStore(args.root)
    _note_reused_run(store, cfg, args.force)
    with _progress(args) as progress:
        run = train_run(cfg, store, progress=progress, force=args.force, tracker=_tracker(args))
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one report (rank 0's) is enough
        _print_run(store, run)


def _note_reused_run(store, cfg, force: bool) -> None:
    """Names are labels, not part of a run's identity: say so when this config's finished run is
    returned under the name it was stored with."""
    from .store import DONE_STATUSES

    old = store.get_run(cfg.key()) if store.exists() else None
    if old is not None and not force and old.status in DONE_STATUSES and (old.name or None) != cfg.name:
        print(f"run {cfg.key()} has this config already ({old.status}), stored under the name "
              f"{old.name or '(none)'}: showing it (a name is a label, not part of the config; --force retrains it)")


def _print_run(store, run):
    from rich.table import Table

    table = Table(title=f"run {run.key} ({run.status}, {run.wall_time:.1f}s, {run.steps_done} steps)")
    rows = store.metrics(keys=[run.key])
    metrics = ["exact_match_tf", "exact_match_greedy", "token_acc"]
    metrics += [m for m in ("exact_match_greedy_oracle", "position_acc", "loss") if any(r.metric == m for r in rows)]  # PPC
    for col in ("bin", "group", *metrics):
        table.add_column(col)
    cells = {}
    for m in rows:
        cells.setdefault((m.lo, m.hi, m.grp), {})[m.metric] = m.value
    for (lo, hi, grp), vals in sorted(cells.items()):
        table.add_row(f"[{lo},{hi}]", grp or "all", *(f"{vals[m]:.3f}" if m in vals else "-" for m in metrics))
    _console().print(table)


def cmd_eval(args):
    import torch

    from .evaluate import evaluate
    from .store import ResultsStore, write_records
    from .training import load_model, resolve_device

    store = ResultsStore(args.root)
    path = store.find_model(args.model)
    device = resolve_device(check_device(args.device))
    model, cfg = load_model(path, device, cache_dir=store.cache_dir())
    task = cfg.task.build()
    stored = store.exists() and store.get_run(path.stem) is not None  # models/<key>.pt of a run in this store
    if args.bins:  # checked as the run's own bins are: bounds, valid lengths, each bin once
        try:
            cfg = load_run_config(merged(cfg.model_dump(mode="json"), {"task.eval_bins": _parse_bins(args.bins)}))
        except ConfigError as err:
            raise ConfigError(f"--bins {args.bins}: {err}") from None
    with torch.no_grad():
        rows = evaluate(model, task, cfg.task.eval_bins, args.examples or cfg.eval.examples_per_bin,
                        cfg.eval.batch_size, device, cfg.train.bf16, not args.no_greedy)
    _print_eval(f"{cfg.name or cfg.task.name}" + (f" (run {path.stem})" if stored else "") + f": {path}", rows)
    if stored:
        store.put_evals(path.stem, rows)
    if args.out:
        key = path.stem if stored else None
        print(f"wrote {write_records(Path(args.out), [{'key': key, **r} for r in rows])}")


def _print_eval(title: str, rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in ("bin", "group", "metric", "value", "count"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"[{r['lo']},{r['hi']}]", r["grp"] or "all", r["metric"], f"{r['value']:.3f}", str(r["count"]))
    _console().print(table)


def cmd_run(args):
    from .experiments.protocol import overrides_label
    from .experiments.runner import execute, plan
    from .store import ResultsStore

    path = find_preset(args.experiment)
    todo = plan(path, only=args.only, executor=args.executor, workers=args.workers, threads=args.threads,
                address=args.address, ensemble=args.ensemble, overrides=_parse_set(args.set))
    study = _study(todo, path, args.only)
    store = ResultsStore(args.root)
    print(todo.describe(store))
    with _progress(args) as progress:
        outcome = execute(todo, store, progress=progress, tracker=_tracker(args))
    if todo.mode == "protocol":
        print(f"trained {sum(len(c.trained) for c in outcome.cells)} runs in this pass")
    for cell in outcome.cells:
        d, s = cell.decision, cell.decision["seeds"]
        print(f"  {cell.cell}: {d['chosen']['rule']} ({overrides_label(d['chosen']['overrides'])}); "
              f"{len(s['successful'])}/{len(s['attempted'])} seeds perfect in distribution")
    result = outcome.sweep
    if result.retries:
        print(f"{result.retries} run(s) restarted after their worker died")
    if result.failed:
        for label, error in result.failed.items():
            print(f"run {label} failed:\n{error}", file=sys.stderr)
        print(f"lengthgen: {len(result.failed)} of {len(todo.configs)} runs failed; rerun the same command to "
              "retry them", file=sys.stderr)
        return 1
    if study is not None:
        from .analysis.study import run_study

        run_study(study, todo.configs, store, todo.experiment)
    if not args.no_report:
        from .report import report

        # What this file asks for now: runs of configurations it no longer names are left out.
        shown = store if todo.mode == "protocol" or args.only else store.restricted_to(todo.keys())
        report(shown, experiment=todo.experiment, metric=todo.reported_metric(), out_dir=store.plots_dir(),
               markdown=args.markdown, console=_console())


def _study(todo, path, only):
    """The experiment's `study` section, checked before anything trains; None without one, or when
    --only leaves out some of the runs it needs."""
    if todo.study is None:
        return None
    from .analysis.study import parse_study

    if only:
        print("--only: the file's study is not run (it needs all of its runs)")
        return None
    return parse_study(todo.study, todo.configs, str(path))


def cmd_report(args):
    from .report import report

    store = _existing_store(args.root)
    experiment, metric = args.experiment, args.metric
    if args.preset:
        from .experiments.runner import plan

        todo = plan(find_preset(args.preset))
        if todo.mode == "protocol":
            raise ConfigError(f"--preset {args.preset!r} is a protocol experiment, whose runs are decided as it goes; "
                              f"report it with --experiment {todo.experiment}")
        store = store.restricted_to(todo.keys())
        experiment, metric = experiment or todo.experiment, metric or todo.reported_metric()
    if args.run:
        store = store.restricted_to([store.resolve(ref) for ref in args.run])
    stored = store.metric_names(experiment)
    if metric is not None and stored and metric not in stored:
        raise ConfigError(f"--metric {metric!r}: no such results; metrics stored: {', '.join(stored)}")
    out_dir = Path(args.out) if args.out else store.plots_dir()
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file; give a folder for plots and Markdown")
    out = report(store, experiment=experiment, metric=metric or "exact_match_greedy", out_dir=out_dir,
                 markdown=args.markdown, console=_console(), formats=args.formats, html=args.html,
                 command=shlex.join(["lengthgen", *args.argv]), preset=args.preset)
    for p in out:
        if isinstance(p, Path):
            print(f"wrote {p}")


def _existing_store(root: str):
    from .store import ResultsStore

    store = ResultsStore(root)
    if not store.exists():
        raise ConfigError(f"no results store in {root!r} (no {store.path.name} there); pass the --root your runs "
                          "wrote to")
    return store


def cmd_runs(args):
    from .report import print_table
    from .report.tables import runs_table

    store = _existing_store(args.root)
    columns, rows = runs_table(store, args.experiment, args.task, args.status)
    print_table(columns, rows, f"{len(rows)} runs in {args.root}", _console())


def cmd_export(args):
    from .report.frame import check_format, frame_text, results_frame
    from .store import atomic_write, write_text

    check_format(args.format)
    if args.format == "parquet" and not args.out:
        raise ConfigError("--format parquet writes a file: give --out FILE.parquet")
    frame = results_frame(_existing_store(args.root), args.experiment)
    if args.format == "parquet":
        atomic_write(Path(args.out), lambda tmp: frame.to_parquet(tmp, index=False))
    elif args.out:
        write_text(Path(args.out), frame_text(frame, args.format))
    else:
        print(frame_text(frame, args.format), end="")
        return
    print(f"wrote {len(frame)} rows to {args.out}", file=sys.stderr)


def cmd_tasks(args):
    import numpy as np

    from .store import ResultsStore
    from .tasks import UsesCache, available_tasks, make_task

    names = [args.name] if args.name else available_tasks()
    for name in names:
        task = make_task(name)
        print(f"{name}: {task.summary}")
        print(f"  format:  {task.format}")
        print(f"  params:  {task.params()}")
        print(f"  lengths: train {list(task.default_train_lengths)}, eval bins {[list(b) for b in task.default_eval_bins]}")
        if isinstance(task, UsesCache):  # its example needs what it derives (the lm task's trained tokenizer)
            if not args.name:
                print(f"  example: lengthgen tasks {name}\n")
                continue
            task.set_cache_dir(ResultsStore(args.root).cache_dir())  # derived once
        n = max(task.min_length, min(task.default_train_lengths[1], 12))
        ex = task.sample(np.random.default_rng(0), n)
        print(f"  example (n={ex.length}): {task.render(ex)}\n")


def cmd_predict(args):
    from .crasp.library import describe

    print(describe(args.task))


def cmd_demo(args):
    args.experiment = str(find_preset("demo"))
    args.only = args.set = None
    args.no_report = args.markdown = False
    # Its two runs train side by side, one thread each: tiny models gain nothing from more.
    workers = min(2, os.cpu_count() or 1)
    args.executor, args.workers, args.threads, args.address = ("local" if workers > 1 else "sequential",
                                                               workers if workers > 1 else None, 1, None)
    args.ensemble = None
    return cmd_run(args)


def cmd_probe(args):
    import torch

    from .analysis.command import run_probe
    from .analysis.text import TextProbeSettings

    try:
        ks = tuple(int(k) for k in args.ks.split(","))
    except ValueError:
        ks = ()
    if not ks or not all(1 <= k <= MAX_LENGTH for k in ks):
        raise ConfigError(f"--ks expects comma-separated whole numbers in [1, {MAX_LENGTH:,}], e.g. 1,2,4,8,16,32; "
                          f"got {args.ks!r}")
    torch.set_num_threads(args.threads)
    try:
        settings = TextProbeSettings(window=args.window, local=args.L, min_target=args.min_target or args.window // 2,
                                     windows_per_doc=args.windows, positions_per_window=args.positions,
                                     max_targets=args.targets, min_gain=args.min_gain, ks=ks,
                                     confirm_top=args.confirm_top, seed=args.seed)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    compare = tuple(k for k in (args.compare or "").split(",") if k)
    print(run_probe(args.target, args.root, settings, documents=args.documents, examples=args.examples,
                    control=not args.no_control, out=args.out, compare=compare))


def cmd_attention(args):
    from .analysis.command import run_position_logits

    print(run_position_logits(args.target, args.root, args.examples))


def cmd_position_head(args):
    from .analysis.command import run_position_head

    print(run_position_head(args.target, args.root, args.examples, args.period))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lengthgen", description=__doc__)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--root", default=DEFAULT_ROOT, type=_root, help=f"results directory (default: ./{DEFAULT_ROOT})")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first, so that the tasks and schemes it registers can be used; repeatable")
    # The global options again on each command, so that they may follow it too; SUPPRESS keeps the
    # value given before the command when they do not.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS, type=_root,
                        help=f"results directory (default: ./{DEFAULT_ROOT})")
    common.add_argument("--import", dest="imports_after", action="append", default=argparse.SUPPRESS,
                        metavar="MODULE", help="import MODULE first (its tasks and schemes); repeatable")
    logs = argparse.ArgumentParser(add_help=False)
    logs.add_argument("--log-every", type=_seconds, default=DEFAULT_INTERVAL_S, metavar="SECONDS",
                      help="when output is not a terminal: a plain progress line per run this often "
                           f"(default: {DEFAULT_INTERVAL_S:g})")
    logs.add_argument("--tracker", choices=TRACKERS,
                      help="also write each run's curves for a dashboard: tensorboard (event files under "
                           "<root>/tensorboard/<run key>/; needs the tracking extra)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub, [common, logs])
    _add_eval(sub, [common])
    _add_run(sub, [common, logs])
    _add_report(sub, [common])
    _add_runs(sub, [common])
    _add_export(sub, [common])
    ts = sub.add_parser("tasks", parents=[common], help="list tasks with their formats and an example")
    ts.add_argument("name", nargs="?", help="one task (default: all)")
    ts.set_defaults(func=cmd_tasks)
    pr = sub.add_parser("predict", parents=[common], help="C-RASP program, fragment and predicted outcome for a task")
    pr.add_argument("task", help="task name (see `lengthgen tasks`)")
    pr.set_defaults(func=cmd_predict)
    _add_probe(sub, [common])
    at = sub.add_parser("attention", parents=[common],
                        help="first-layer attention by position-ID distance of a finished APE run")
    at.add_argument("target", help="a finished run key or a models/<key>.pt file")
    at.add_argument("--examples", type=_whole(1, MAX_EXAMPLES), default=100, help="examples per evaluation bin")
    at.set_defaults(func=cmd_attention)
    ph = sub.add_parser("position-head", parents=[common],
                        help="a finished PPC run's position head: accuracy per answer token and bin, ID errors")
    ph.add_argument("target", help="a finished run key or a models/<key>.pt file")
    ph.add_argument("--examples", type=_whole(1, MAX_EXAMPLES), default=200, help="examples per evaluation bin")
    ph.add_argument("--period", type=_whole(1, MAX_LENGTH), default=4,
                    help="IDs per assignment: errors that are multiples of it pick another one (var_chain: 4)")
    ph.set_defaults(func=cmd_position_head)
    d = sub.add_parser("demo", parents=[common, logs],
                       help="a <=5-minute CPU slice of the sparsity experiment: table + plot")
    d.set_defaults(func=cmd_demo)
    return p


def _add_train(sub, parents):
    t = sub.add_parser("train", parents=parents, help="train and evaluate one run")
    t.add_argument("--config", help="YAML run config")
    t.add_argument("--task", help="task name (see `lengthgen tasks`)")
    t.add_argument("--positional", metavar="SCHEME",
                   help=f"positional scheme, one of: {', '.join(POSITIONAL_SCHEMES)} (default: the config's)")
    t.add_argument("--seed", type=_whole(0, MAX_SEED - 1), help="random seed of weights and data (default: 0)")
    t.add_argument("--steps", type=int, help="optimizer steps (default: the config's train.steps)")
    t.add_argument("--name", help="a name for the run, shown in tables and plots")
    t.add_argument("--bins", help="evaluation bins LO-HI,LO-HI,... (inclusive)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config field, e.g. model.d_model=64")
    t.add_argument("--force", action="store_true", help="retrain even if the run is finished")
    t.add_argument("--print-config", action="store_true", help="print the resolved run config as YAML and exit")
    t.set_defaults(func=cmd_train)


def _add_eval(sub, parents):
    e = sub.add_parser("eval", parents=parents, help="evaluate a finished run's model on length bins")
    e.add_argument("model", help="run key, unique key prefix or run name, or a models/<key>.pt file")
    e.add_argument("--bins", help="LO-HI,LO-HI,... (default: the run's bins)")
    e.add_argument("--examples", type=_whole(1, MAX_EXAMPLES), help="examples per bin")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    e.add_argument("--no-greedy", action="store_true", help="skip autoregressive decoding")
    e.add_argument("--out", metavar="FILE", help="also write the results to FILE (.csv, .jsonl or .json)")
    e.set_defaults(func=cmd_eval)


def _add_run(sub, parents):
    r = sub.add_parser("run", parents=parents, help="run an experiment file or preset (finished runs are skipped)")
    r.add_argument("experiment", help="path to EXPERIMENT.yaml or a preset name")
    r.add_argument("--only", help="run only points whose name contains this text")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config field on every point, e.g. train.steps=200 (dotted key, YAML value; "
                        "repeatable)")
    r.add_argument("--no-report", action="store_true", help="train only: no tables or plots at the end")
    r.add_argument("--markdown", action="store_true", help="print the report's tables as Markdown")
    r.add_argument("--executor", choices=("sequential", "local", "ray"), default="sequential",
                   help="sequential: in this process; local: worker processes on this machine; "
                        "ray: a local Ray instance, or the cluster at --address (default: sequential)")
    r.add_argument("--workers", type=_whole(1, MAX_PROCESSES),
                   help="runs at once (local: default one per core; ray: as many as fit)")
    r.add_argument("--threads", type=_whole(1, MAX_PROCESSES),
                   help="torch threads per run (local: default cores/workers; ray: 1)")
    r.add_argument("--address", help="Ray cluster to join, e.g. auto or HOST:6379 (default: start a local instance)")
    r.add_argument("--ensemble", type=_whole(1, MAX_COUNT), metavar="N",
                   help="train points that differ only in seed / train.lr N at a time as one batched model "
                        "(overrides the file's 'ensemble')")
    r.set_defaults(func=cmd_run)


def _add_report(sub, parents):
    rep = sub.add_parser("report", parents=parents, help="tables and plots from the results store")
    rep.add_argument("--experiment", help="only this experiment's runs (default: all runs)")
    rep.add_argument("--preset", metavar="FILE",
                     help="only the runs this experiment file (or preset name) expands to now, not the configurations "
                          "it superseded; also sets --experiment and the metric it reports")
    rep.add_argument("--run", action="append", metavar="RUN",
                     help="only this run (key, unique key prefix or name); repeatable")
    rep.add_argument("--metric", help="default: exact_match_greedy, or the --preset's reported metric")
    rep.add_argument("--out", help="folder for plots and Markdown (default: <root>/plots)")
    rep.add_argument("--markdown", action="store_true",
                     help="print the whole page (tables, verdicts, machines, figure links, the command that "
                          "regenerates it) as Markdown and write it to --out: <preset>.md with --preset, else "
                          "<experiment>_<metric>.md")
    rep.add_argument("--formats", type=_formats, default=("png",), metavar="LIST",
                     help="figure files to write, any of png,pdf,svg (default: png)")
    rep.add_argument("--html", metavar="FILE", help="also write the whole report (tables, verdicts, figures, the "
                                                    "commands and machines) as one self-contained HTML file")
    rep.set_defaults(func=cmd_report)


def _add_runs(sub, parents):
    from .store import STATUSES

    r = sub.add_parser("runs", parents=parents, help="list stored runs: key, name, status, steps, headline metric")
    r.add_argument("--experiment", help="only this experiment's runs")
    r.add_argument("--task", help="only runs of this task")
    r.add_argument("--status", choices=STATUSES, help="only runs with this status")
    r.set_defaults(func=cmd_runs)


def _add_export(sub, parents):
    x = sub.add_parser("export", parents=parents,
                       help="every stored metric as one tidy table (one row per run, bin, group and metric)")
    x.add_argument("--format", default="csv", help="csv, jsonl or parquet (needs pyarrow) (default: csv)")
    x.add_argument("--out", metavar="FILE", help="write to FILE (default: standard output; parquet needs a file)")
    x.add_argument("--experiment", help="only this experiment's runs")
    x.set_defaults(func=cmd_export)


def _add_probe(sub, parents):
    pb = sub.add_parser("probe", parents=parents,
                        help="dependency-sparsity probe: on a finished synthetic or language-model run, or on smollm2")
    pb.add_argument("target", help="smollm2, a finished run key or a models/<key>.pt file")
    pb.add_argument("--L", type=_whole(1, MAX_LENGTH), default=128, help="local context: the last L tokens (text)")
    pb.add_argument("--window", type=_whole(1, MAX_LENGTH), default=512, help="full context in tokens (text)")
    pb.add_argument("--min-target", type=_whole(1, MAX_LENGTH),
                    help="targets t in [min-target, window) (default: window / 2)")
    pb.add_argument("--documents", type=_whole(1, MAX_COUNT), default=20,
                    help="documents: the longest State of the Union addresses (smollm2) or held-out documents (lm run)")
    pb.add_argument("--windows", type=_whole(1, MAX_COUNT), default=1,
                    help="disjoint windows of --window tokens per document (text)")
    pb.add_argument("--positions", type=_whole(1, MAX_COUNT), default=12,
                    help="random target positions screened per window (text)")
    pb.add_argument("--targets", type=_whole(1, MAX_COUNT), default=1000,
                    help="probed targets at most, drawn among positions with g >= --min-gain (text)")
    pb.add_argument("--min-gain", type=float, default=0.5, help="least long-context gain g in nats to probe")
    pb.add_argument("--ks", default="1,2,4,8,16,32", help="k values: attributed vs random recovery; s grid (text)")
    pb.add_argument("--confirm-top", type=_whole(1, MAX_COUNT), default=8,
                    help="gradient candidates re-ranked by ablation (text)")
    pb.add_argument("--examples", type=_whole(1, MAX_EXAMPLES), default=200, help="examples (synthetic run)")
    pb.add_argument("--seed", type=_whole(0, MAX_SEED - 1), default=0, help="random seed of the probe's sampling")
    pb.add_argument("--threads", type=_whole(1, MAX_PROCESSES), default=1, help="torch threads")
    pb.add_argument("--no-control", action="store_true",
                    help="skip the control: distant tokens taken from another document (text)")
    pb.add_argument("--out", help="write the report (.md) or all records (.json)")
    pb.add_argument("--compare", help="with a language-model reference run: runs trained at L whose recovered share R "
                                      "of the reference gain is reported for sparse vs dense targets")
    pb.set_defaults(func=cmd_probe)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # the command, as a report records it
    try:
        from .plugins import load_plugins

        load_plugins(args.imports + getattr(args, "imports_after", []))
        code = args.func(args) or 0
        sys.stdout.flush()  # output still buffered meets a closed pipe here, inside the handler
        return code
    except InputError as err:
        print(f"lengthgen: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: finished runs are kept, runs in progress resume from their checkpoints
        print("lengthgen: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped (`lengthgen tasks | head`): end quietly, as unix tools do. Point stdout
        # at /dev/null so that the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except OSError as err:  # the machine, not the input: a full disk, a vanished folder
        print(f"lengthgen: error: {err}", file=sys.stderr)
        return 1
    except Exception:  # neither the input nor the machine: a bug, whose traceback is what finds it
        traceback.print_exc()
        print(BUG_REPORT, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
