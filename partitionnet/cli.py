"""The ``partitionnet`` command line.

Subcommands:

* ``show``     - print a partition matrix V, its membership matrix, or a pooling permutation T;
* ``verify``   - run every derivation and erratum check (see ``derivations/``);
* ``train`` / ``evaluate`` - train and evaluate a network on a bundled data set.
"""
from __future__ import annotations

import argparse
import sys

from . import show as render
from . import train_cli
from .partition import Partition
from .pooling import Pooling

# The seed's example (47.1149): M = 6, four subvectors of size 3 (1-based, as printed).
SEED_EXAMPLE = [[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]]


def _padding(text: str):
    if text in ("valid", "same", "full"):
        return text
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"padding must be valid, same, full, an int or ints like 1,2; got {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def _ints(text: str):
    try:
        values = [int(v) for v in text.replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or ints like 3,3 or 3x3; got {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def _cmd_show(args) -> int:
    out = []
    if args.shape is None:
        V = Partition.from_indices(SEED_EXAMPLE, 6, one_based=True)
        out.append("The seed's example (47.1149): M = 6, P = 4 subvectors of S = 3 entries")
        out.append("index lists (1-based): " + "; ".join(str(r) for r in SEED_EXAMPLE))
        mats = [("partition matrix V (47.1149)", V.matrix(), V.S),
                ("membership (I_P kron 1_S^T) V (47.1151)", V.membership(), None)]
    else:
        shape = args.shape if isinstance(args.shape, tuple) else (args.shape,)
        if args.pool is not None:
            pool = Pooling.windows(shape, args.pool, drop_remainder=args.drop_remainder)
            out.append(f"pooling over a {'x'.join(map(str, shape))} map with {args.pool} windows: "
                       f"P = {pool.P}, P' = {pool.P_out}")
            mats = [("permutation T (47.1201-47.1203)", pool.permutation(), None)]
        else:
            if args.kernel is None:
                raise ValueError("show needs --kernel (a partition) or --pool (a pooling) with --shape")
            V = Partition.sliding_window(shape, args.kernel, stride=args.stride, padding=args.padding,
                                         dilation=args.dilation)
            out.append(f"{V!r}")
            out.append(f"output map {V.output_shape}, M = {V.M}, P = {V.P}, S = {V.S}")
            mats = [("partition matrix V", V.matrix(), V.S)]
            if args.membership:
                mats.append(("membership (I_P kron 1_S^T) V (47.1151)", V.membership(), None))
    for name, A, block in mats:
        out.append("")
        out.append(render.describe(name, A))
        out.append(render.latex(A) if args.latex else render.grid(A, block_rows=block))
    print("\n".join(out))
    return 0


def _cmd_verify(args) -> int:
    from derivations import registry

    argv = []
    if args.only:
        argv += ["--only", args.only]
    if args.markdown:
        argv += ["--markdown", args.markdown]
    return registry.main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partitionnet", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("show", help="print a partition matrix V or a pooling permutation T",
                       description="Print V (and its membership matrix) or T for a map given on the command "
                                   "line; with no arguments, the seed's example (47.1149, 47.1151).")
    p.add_argument("--shape", type=_ints, help="map shape, e.g. 6,6 or 6x6")
    p.add_argument("--kernel", type=_ints, help="window shape of the partition, e.g. 3 or 3,2")
    p.add_argument("--stride", type=_ints, default=1)
    p.add_argument("--padding", type=_padding, default=0, help="valid, same, full, or ints")
    p.add_argument("--dilation", type=_ints, default=1)
    p.add_argument("--membership", action="store_true", help="also print (I_P kron 1_S^T) V")
    p.add_argument("--pool", type=_ints, metavar="WINDOW", help="show the pooling permutation T for this window")
    p.add_argument("--drop-remainder", action="store_true", help="let pooling windows leave a remainder out")
    p.add_argument("--latex", action="store_true", help="print LaTeX bmatrix instead of a grid")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("verify", help="run every derivation and erratum check",
                       description="Run the SymPy derivations and the errata checks and print a table.")
    p.add_argument("--only", metavar="EQ", help="run only the checks of one equation, e.g. 47.1257")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown to FILE")
    p.set_defaults(func=_cmd_verify)

    train_cli.add_parsers(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"partitionnet {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
