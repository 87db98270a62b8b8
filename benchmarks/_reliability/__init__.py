"""The parts of the reliability benchmark (``benchmarks/reliability.py``, the entry script;
its module docstring says what each part does and counts)."""
