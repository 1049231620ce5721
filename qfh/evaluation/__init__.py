"""Honest evaluation and walk-forward training of QFH signal rules (DESIGN.md section 11).

Pure array code lives in the modules below (no ORM); ``services`` and ``selectors`` are the
Django side. Entry points:

* ``evaluate_rule(candles, rule, horizon=, costs=, alignment="causal")`` -> ``Evaluation``
  (``candles``: ``Candles`` arrays; ``rule``: ``qfh.rules.validate_rule(...)``);
* ``walk_forward(candles, search=SearchSpace(...), folds=, seed=)`` -> ``TrainingResult``;
* ``check_gates(metrics, gates)`` -> the list of failed promotion gates.
"""
