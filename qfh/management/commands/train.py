from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from marketdata.cli import parse_moment
from marketdata.selectors import SERVED_TIMEFRAMES
from qfh.arrays import command_array_module
from qfh.evaluation.financing import financing_costs
from qfh.evaluation.selectors import UnknownPairError
from qfh.evaluation.services import EvaluationError, pair_model_train


class Command(BaseCommand):
    help = (
        "Walk-forward parameter search for a pair: stores a PairModel with its out-of-sample "
        "figures and the promotion gates it passed or failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pair", required=True)
        parser.add_argument("--timeframe", default="M1", choices=list(SERVED_TIMEFRAMES))
        parser.add_argument("--from", dest="start", help="UTC date or time, e.g. 2025-07-24")
        parser.add_argument("--to", dest="end", help="UTC date or time (exclusive)")
        parser.add_argument("--folds", type=int, default=4)
        parser.add_argument("--sets", type=int, default=200, help="parameter sets to search")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--min-train-trades", type=int, default=30)
        parser.add_argument("--spread", type=float, help="pips; default per pair (EUR_USD 1.0)")
        parser.add_argument("--slippage", type=float, default=0.0, help="pips per side")
        parser.add_argument(
            "--financing",
            metavar="LONG:SHORT",
            help="annual financing rates charged per 17:00 New York rollover held through, "
            "signed as OANDA lists them (the instrument's financing.longRate/shortRate), "
            "e.g. -0.0300:0.0100; default none",
        )
        parser.add_argument(
            "--backend",
            choices=["auto", "numpy", "cupy"],
            help="array module of this run (default: the QFH_BACKEND setting)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        xp = command_array_module(options["backend"])
        if options["sets"] < 1 or options["folds"] < 1:
            raise CommandError("--sets and --folds must be at least 1")
        try:
            financing = financing_costs(options["financing"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        with tqdm(
            total=options["sets"],
            desc=f"{options['pair']} search",
            unit="set",
            disable=options["no_progress"],
            file=sys.stderr,
        ) as bar:
            try:
                model = pair_model_train(
                    pair=options["pair"],
                    timeframe=options["timeframe"],
                    start=parse_moment("from", options["start"]),
                    end=parse_moment("to", options["end"]),
                    folds=options["folds"],
                    sets=options["sets"],
                    seed=options["seed"],
                    costs={
                        "spread_pips": options["spread"],
                        "slippage_pips": options["slippage"],
                        **financing,
                    },
                    min_train_trades=options["min_train_trades"],
                    xp=xp,
                    progress=bar.update,
                )
            except (UnknownPairError, EvaluationError) as error:
                raise CommandError(str(error)) from None
        self.stdout.write(f"pair_model_id={model.pk}")
        self.stdout.write(f"inputs_hash={model.inputs_hash}")
        self.stdout.write(f"params={model.params} horizon={model.horizon}")
        self.stdout.write(
            f"out_of_sample: trades={model.oos_trades} hit_rate={model.oos_hit_rate:.4f} "
            f"[{model.oos_hit_low:.4f}, {model.oos_hit_high:.4f}] "
            f"expectancy_pips={model.oos_expectancy_pips:.3f} pnl_pips={model.oos_pnl_pips:.1f} "
            f"max_drawdown_pips={model.oos_max_drawdown_pips:.1f}"
        )
        if model.passed_gates:
            self.stdout.write("gates=passed (promote with pair_model_promote)")
        else:
            self.stdout.write("gates=failed: " + "; ".join(model.failed_gates))
