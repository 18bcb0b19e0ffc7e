"""Out-of-sample evaluation (docs/DESIGN.md §11): sector probes, similarity -> future, hedging, collapse, reports.

Entry point: `dynmix.evaluation.report.evaluate_run(ws, run_dir, compare=None)`. Submodules are imported
where used, so `import dynmix.evaluation` stays cheap.
"""
