"""Benchmarks of the greedy build pattern and of the program itself (`make bench`).

    python -m tools.bench --out build/bench [--quick] [--only NAME ...]

Each benchmark is a module with one ``run(context) -> BenchResult`` function; ``report`` turns
the results into results.json, results.md, PNG charts and the README's Performance section.
"""
