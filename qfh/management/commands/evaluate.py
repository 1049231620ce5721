from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from marketdata.cli import parse_moment
from marketdata.selectors import SERVED_TIMEFRAMES
from qfh.arrays import command_array_module
from qfh.evaluation.evaluate import LookAheadError
from qfh.evaluation.financing import financing_costs
from qfh.evaluation.selectors import UnknownPairError
from qfh.evaluation.services import EvaluationError, rule_evaluation_run
from qfh.rules import RULE_DEFAULTS, RuleError


def _interval(figures: dict[str, Any], rate: str, low: str, high: str) -> str:
    return f"{figures[rate]:.4f} [{figures[low]:.4f}, {figures[high]:.4f}]"


class Command(BaseCommand):
    help = (
        "Evaluate a signal rule on stored candles after costs, with baselines, and store the "
        "result. Causal by default; --leaky adds the original's look-ahead alignment, labelled."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pair", required=True)
        parser.add_argument("--timeframe", default="M1", choices=list(SERVED_TIMEFRAMES))
        parser.add_argument("--from", dest="start", help="UTC date or time, e.g. 2025-07-24")
        parser.add_argument("--to", dest="end", help="UTC date or time (exclusive)")
        parser.add_argument("--rule", default="testbed", choices=list(RULE_DEFAULTS))
        parser.add_argument("--params", default="{}", help='JSON, e.g. {"buy_threshold": 0.55}')
        parser.add_argument("--horizon", type=int, default=1, help="candles (default 1)")
        parser.add_argument("--spread", type=float, help="pips; default per pair (EUR_USD 1.0)")
        parser.add_argument("--slippage", type=float, default=0.0, help="pips per side")
        parser.add_argument(
            "--financing",
            metavar="LONG:SHORT",
            help="annual financing rates charged per 17:00 New York rollover held through, "
            "signed as OANDA lists them (the instrument's financing.longRate/shortRate), "
            "e.g. -0.0300:0.0100; default none",
        )
        parser.add_argument("--dead-band", type=float, default=0.5, help="pips (section 6.1)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
        parser.add_argument(
            "--leaky",
            action="store_true",
            help="also run the original's look-ahead alignment, for comparison only",
        )
        parser.add_argument(
            "--backend",
            choices=["auto", "numpy", "cupy"],
            help="array module of this run (default: the QFH_BACKEND setting)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        xp = command_array_module(options["backend"])
        start = parse_moment("from", options["start"])
        end = parse_moment("to", options["end"])
        try:
            params = json.loads(options["params"])
        except json.JSONDecodeError as error:
            raise CommandError(f"--params is not valid JSON: {error}") from None
        if not isinstance(params, dict):
            raise CommandError("--params must be a JSON object")
        if options["horizon"] < 1:
            raise CommandError(f"--horizon={options['horizon']} must be at least 1")
        runs = [False, True] if options["leaky"] else [False]
        try:
            financing = financing_costs(options["financing"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        costs = {
            "spread_pips": options["spread"],
            "slippage_pips": options["slippage"],
            **financing,
        }
        for leaky in tqdm(
            runs,
            desc=f"{options['pair']} evaluate",
            disable=options["no_progress"],
            file=sys.stderr,
        ):
            try:
                row = rule_evaluation_run(
                    pair=options["pair"],
                    timeframe=options["timeframe"],
                    start=start,
                    end=end,
                    rule_type=options["rule"],
                    params=params,
                    horizon=options["horizon"],
                    leaky=leaky,
                    costs=costs,
                    dead_band_pips=options["dead_band"],
                    seed=options["seed"],
                    xp=xp,
                )
            except (RuleError, UnknownPairError, EvaluationError, LookAheadError) as error:
                raise CommandError(str(error)) from None
            figures = row.performance
            original = row.original
            self.stdout.write(f"evaluation_id={row.pk}")
            self.stdout.write(f"alignment={row.alignment_label}")
            self.stdout.write(f"candles={row.candles} horizon={row.horizon}")
            self.stdout.write(
                f"trades={figures['trades']} signal_rate={figures['signal_rate']:.4f}"
            )
            self.stdout.write(
                "hit_rate_after_costs=" + _interval(figures, "hit_rate", "hit_low", "hit_high")
            )
            self.stdout.write(
                f"pnl_pips={figures['pnl_pips']:.1f} "
                f"pnl_{figures['account_currency'] or 'quote'}={figures['pnl_account']:.2f} "
                f"expectancy_pips={figures['expectancy_pips']:.3f} "
                f"profit_factor={figures['profit_factor']} sharpe={figures['sharpe']:.2f} "
                f"max_drawdown_pips={figures['max_drawdown_pips']:.1f} "
                f"exposure={figures['exposure']:.4f}"
            )
            band = original["dead_band_pips"]
            for name in ("overall_accuracy", "hc_accuracy", "hc_accuracy_beyond_band"):
                share = original[name]
                self.stdout.write(
                    f"original_{name}={share['rate']:.4f} [{share['low']:.4f}, "
                    f"{share['high']:.4f}] n={share['trials']} (dead band {band} pips, gross)"
                )
            self.stdout.write(f"original_hc_rate={original['hc_rate']:.4f}")
            for name, baseline in row.baselines.items():
                self.stdout.write(
                    f"baseline_{name}: trades={baseline['trades']} hit_rate="
                    + _interval(baseline, "hit_rate", "hit_low", "hit_high")
                    + f" pnl_pips={baseline['pnl_pips']:.1f}"
                )
