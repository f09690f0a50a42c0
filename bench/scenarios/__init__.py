"""One module per scenario of `python -m bench`; each exposes ``run(ctx) -> ScenarioResult``."""
