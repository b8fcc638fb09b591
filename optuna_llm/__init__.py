"""optuna-llm."""
