"""Result formats: Gradescope's results.json, the terminal table, and reading results back."""
