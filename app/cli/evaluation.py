"""``supportbot eval``: offline evaluation (run, retrieval, calibrate, csat).

The evaluation stack (``eval/``, ragas, pandas …) is imported inside each command, under
``eval_extra()``: on the core install the commands say which extra to install.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.output import eval_extra, fail, out
from app.config import get_settings
from app.errors import SupportbotError

app = typer.Typer(help="Offline evaluation.", no_args_is_help=True)


@app.command("run")
def run(
    variants: Annotated[str, typer.Option(help="Comma-separated variants; the first is the "
                                          "control.")] = "control,concise_empathetic",
    dataset: Annotated[Path, typer.Option(help="Labelled cases (.jsonl or .csv).")] = Path(
        "knowledge/eval/cases.jsonl"),
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path(
        "eval-out"),
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume",
                                         help="Keep rows already in OUT.")] = True,
    ragas: Annotated[bool, typer.Option("--ragas/--no-ragas")] = True,
    live: Annotated[bool, typer.Option("--live/--no-live",
                                       help="Add the store's live A/B figures.")] = True,
) -> None:
    """Run every case through each variant and write report.md, report.html and tables."""
    with eval_extra():
        from eval.experiment import run_experiment

        try:
            report = run_experiment(
                get_settings(), [v.strip() for v in variants.split(",") if v.strip()], dataset,
                out_dir, limit=limit, resume=resume, ragas=ragas, live=live)
        except (SupportbotError, ValueError) as e:
            raise fail(e) from e
    for line in report.headline:
        typer.echo(f"- {line}")
    typer.echo(f"report: {report.markdown} and {report.html}")


@app.command("retrieval")
def retrieval(
    questions: Annotated[Path, typer.Option(
        help="JSONL with question and gold_article_ids.")] = Path(
        "knowledge/eval/retrieval_questions.jsonl"),
    k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    modes: Annotated[str, typer.Option(help="Comma-separated: lexical,dense,hybrid.")] =
        "lexical,dense,hybrid",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recall@1/@5/@k and MRR of each retrieval mode on labelled questions."""
    with eval_extra():
        from app.container import knowledge
        from eval.metrics.retrieval import evaluate_retrieval, load_questions

        try:
            rows = load_questions(questions)
            report = evaluate_retrieval(knowledge(get_settings()), rows, k,
                                        [m.strip() for m in modes.split(",")])
        except (SupportbotError, ValueError) as e:
            raise fail(e) from e
    if as_json:
        typer.echo(json.dumps(report))
        return
    table = Table("mode", "n", "recall@1", "recall@5", f"recall@{k}", "MRR")
    for mode, m in report["modes"].items():
        table.add_row(mode, str(report["n"]), f"{m['recall@1']:.3f}", f"{m['recall@5']:.3f}",
                      f"{m[f'recall@{k}']:.3f}", f"{m['mrr']:.3f}")
    out.print(table)


@app.command("calibrate")
def calibrate(
    data_dir: Annotated[Path | None, typer.Option(
        help="Index to fit on; the sample articles are ingested when it has none (default: a "
             "temporary one). With --domains: where the help centers are ingested (default: "
             "the data dir, as 'eval domains' does).")] = None,
    domains: Annotated[bool, typer.Option(
        "--domains", help="Fit on every help center of the benchmark and report leave one "
                          "domain out (Brier, reliability, decision curve).")] = False,
    plot: Annotated[Path | None, typer.Option(
        help="With --domains: write the reliability diagram here (PNG).")] = None,
) -> None:
    """Fit the answer confidence's calibration; print it as JSON.

    Paste the calibration into app/responder/confidence.py."""
    with eval_extra():
        from eval.calibrate import calibrate as fit
        from eval.calibrate import calibrate_domains, reliability_plot

        try:
            if domains:
                settings = get_settings()
                if data_dir is not None:
                    settings = settings.model_copy(update={"data_dir": data_dir})
                report = calibrate_domains(settings)
                if plot is not None:
                    reliability_plot(report, plot)
            else:
                with tempfile.TemporaryDirectory(prefix="supportbot-calibrate-") as tmp:
                    settings = get_settings().model_copy(
                        update={"data_dir": data_dir or Path(tmp)})
                    report = fit(settings)
        except (SupportbotError, ValueError) as e:
            raise fail(e) from e
    typer.echo(json.dumps(report, indent=2))


@app.command("csat")
def csat(
    conversations: Annotated[Path | None, typer.Option(
        help="Past conversations (*.jsonl file or directory; default: "
             "knowledge/conversations).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split.")] = 0,
) -> None:
    """Refit the CSAT proxy on rated past conversations; print weights and quality as JSON.

    Paste the weights into DEFAULT_WEIGHTS in eval/metrics/csat.py."""
    with eval_extra():
        from dataclasses import asdict

        from eval.metrics.csat import fit_weights
        from pipelines.conversations import CONVERSATIONS_DIR, load_conversations

        try:
            weights, report = fit_weights(
                load_conversations([conversations or CONVERSATIONS_DIR]), seed=seed)
        except (SupportbotError, ValueError) as e:
            raise fail(e) from e
    typer.echo(json.dumps({"weights": weights, "report": asdict(report)}, indent=2))


@app.command("domains")
def domains(
    only: Annotated[str, typer.Option(help="Comma-separated domains (default: all).")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Every help center of the multi-domain benchmark through the turn policy, a table per
    domain (hand-off classifier fitted without the domain it is measured on)."""
    with eval_extra():
        from eval.domains import TARGETS, run_domains, table

        try:
            reports = run_domains(get_settings(),
                                  only=[d.strip() for d in only.split(",") if d.strip()])
        except (SupportbotError, ValueError) as e:
            raise fail(e) from e
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports]))
        return
    for r in reports:
        grid = Table("figure", "value", "target", title=f"{r.domain} ({r.n})")
        for name, (op, goal) in TARGETS.items():
            value = r.figures.get(name, float("nan"))
            met = value >= goal if op == ">=" else value <= goal
            grid.add_row(name, f"{value:.3f}", f"{op} {goal:.2f}" + ("" if met else "  ✗"))
        out.print(grid)
    out.print(table(reports), highlight=False)


@app.command("handoff")
def handoff(
    save: Annotated[bool, typer.Option(
        "--save", help="Write the artefact the engine loads (app/responder/data/).")] = False,
    max_fpr: Annotated[float, typer.Option(
        min=0.0, max=0.5,
        help="Largest out-of-fold share of other messages flagged, in every fold.")] = 0.03,
) -> None:
    """Fit the hand-off intent classifier on knowledge/benchmarks/handoff and every domain's
    questions; print its leave-one-domain-out figures (and save it with --save)."""
    with eval_extra():
        from app.container import knowledge
        from app.knowledge.embedder import model_id
        from eval.domains import HandoffData, load_domains, train_handoff

        settings = get_settings()
        try:
            domains = load_domains()
            data = HandoffData.of(domains, knowledge(settings).kb.embedder.embed_documents)
            model = train_handoff(data, [d.name for d in domains],
                                  model_id(settings.embedding_model), max_fpr=max_fpr)
        except (SupportbotError, ValueError) as e:
            raise fail(e) from e
    grid = Table("held-out domain", "requests", "recall", "others", "others flagged",
                 title=f"hand-off intent, threshold {model.threshold:.3f}")
    for name, r in model.report["held_out"].items():
        grid.add_row(name, str(r["requests"]), f"{r['recall']:.3f}", str(r["others"]),
                     f"{r['flagged_others']:.3f}")
    out.print(grid)
    if save:
        out.print(f"saved {model.save()}", highlight=False)
