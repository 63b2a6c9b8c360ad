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

# The book's example (47.1149): M = 6, four subvectors of size 3 (1-based, as printed).
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


#: The largest map ``show`` builds an operator for (its grid shows at most 100 columns anyway).
MAX_SHOW_ENTRIES = 1_000_000


def _show_error(message: str) -> ValueError:
    """Library messages speak of keyword arguments; the command line has flags."""
    return ValueError(message.replace("pass drop_remainder=True", "pass --drop-remainder")
                      .replace(", or partial=True to keep it as smaller windows", ""))


def _cmd_show(args) -> int:
    given = [flag for flag, value in (("--kernel", args.kernel), ("--pool", args.pool), ("--stride", args.stride),
                                      ("--padding", args.padding), ("--dilation", args.dilation))
             if value is not None]
    given += [flag for flag, value in (("--membership", args.membership), ("--drop-remainder", args.drop_remainder))
              if value]
    out = []
    if args.shape is None:
        if given:
            raise ValueError(f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --shape; without "
                             "--shape, show prints the book's example (47.1149) and takes no other option")
        V = Partition.from_indices(SEED_EXAMPLE, 6, one_based=True)
        out.append("The book's example (47.1149): M = 6, P = 4 subvectors of S = 3 entries")
        out.append("index lists (1-based): " + "; ".join(str(r) for r in SEED_EXAMPLE))
        mats = [("partition matrix V (47.1149)", V.matrix(), V.S),
                ("membership (I_P kron 1_S^T) V (47.1151)", V.membership(), None)]
    else:
        shape = args.shape if isinstance(args.shape, tuple) else (args.shape,)
        if any(n < 1 for n in shape):
            raise ValueError(f"--shape must be positive sizes, got {'x'.join(map(str, shape))}")
        entries = 1
        for n in shape:
            entries *= n
        if entries > MAX_SHOW_ENTRIES:
            raise ValueError(f"--shape {'x'.join(map(str, shape))} has {entries} entries; show prints operators "
                             f"of maps with at most {MAX_SHOW_ENTRIES} entries")
        if args.kernel is None:
            geometry = [f for f in given if f in ("--stride", "--padding", "--dilation", "--membership")]
            if args.pool is None:
                raise ValueError("show needs --kernel (a partition) or --pool (a pooling) with --shape")
            if geometry:
                raise ValueError(f"{' and '.join(geometry)} {'needs' if len(geometry) == 1 else 'need'} --kernel "
                                 "(they describe the partition, not the pooling)")
        mats = []
        if args.kernel is not None:
            V = Partition.sliding_window(shape, args.kernel, stride=1 if args.stride is None else args.stride,
                                         padding=0 if args.padding is None else args.padding,
                                         dilation=1 if args.dilation is None else args.dilation)
            out.append(f"{V!r}")
            out.append(f"output map {V.output_shape}, M = {V.M}, P = {V.P}, S = {V.S}")
            mats.append(("partition matrix V", V.matrix(), V.S))
            if args.membership:
                mats.append(("membership (I_P kron 1_S^T) V (47.1151)", V.membership(), None))
            shape = tuple(V.output_shape)
        if args.pool is not None:
            try:
                pool = Pooling.windows(shape, args.pool, drop_remainder=args.drop_remainder)
            except ValueError as exc:
                raise _show_error(str(exc)) from None
            where = "the partition's output map" if args.kernel is not None else "a map"
            out.append(f"pooling over {where} of shape {'x'.join(map(str, shape))} with "
                       f"{'x'.join(map(str, pool.window))} windows: P = {pool.P}, P' = {pool.P_out}")
            mats.append(("permutation T (47.1201-47.1203)", pool.permutation(), None))
        elif args.drop_remainder:
            raise ValueError("--drop-remainder applies to pooling windows and needs --pool")
    if args.latex:
        out = [f"% {line}" if line else "" for line in out]
        out.insert(0, "% partitionnet show --latex: a fragment for a LaTeX document that loads amsmath")
    for name, A, block in mats:
        out.append("")
        if args.latex:
            out.append("% " + render.describe(name, A))
            out.append(render.latex(A, display=True))
        else:
            out.append(render.describe(name, A))
            out.append(render.grid(A, block_rows=block))
    print("\n".join(out))
    return 0


def _cmd_verify(args) -> int:
    from .derivations import registry

    argv = []
    if args.only:
        argv += ["--only", args.only]
    if args.markdown:
        argv += ["--markdown", args.markdown]
    if args.jobs is not None:
        argv += ["--jobs", str(args.jobs)]
    return registry.main(argv)


DESCRIPTION = ("partitionnet: convolutional networks written as explicit sparse matrix algebra. "
               "Print operators, verify the derivations, train and evaluate networks.")


def _version() -> str:
    from . import __version__

    return f"partitionnet {__version__}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partitionnet", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("show", help="print a partition matrix V or a pooling permutation T",
                       description="Print V (and its membership matrix) or T for a map given on the command "
                                   "line; with no arguments, the book's example (47.1149, 47.1151).")
    p.add_argument("--shape", type=_ints, help="map shape, e.g. 6,6 or 6x6")
    p.add_argument("--kernel", type=_ints, help="window shape of the partition, e.g. 3 or 3,2")
    p.add_argument("--stride", type=_ints, default=None,
                   help="step between windows of the partition, per axis, e.g. 2 or 2,1 (default 1)")
    p.add_argument("--padding", type=_padding, default=None,
                   help="zero padding of the partition: valid, same, full, or ints (default 0)")
    p.add_argument("--dilation", type=_ints, default=None,
                   help="spacing of the kernel taps of the partition, per axis, e.g. 2 (default 1)")
    p.add_argument("--membership", action="store_true", help="also print (I_P kron 1_S^T) V")
    p.add_argument("--pool", type=_ints, metavar="WINDOW",
                   help="show the pooling permutation T for this window; with --kernel, T pools the "
                        "partition's output map (T is the same for every pooling kind)")
    p.add_argument("--drop-remainder", action="store_true", help="let pooling windows leave a remainder out")
    p.add_argument("--latex", action="store_true",
                   help="print a LaTeX fragment (amsmath bmatrix in a display; other lines are %% comments)")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("verify", help="run every derivation and erratum check",
                       description="Run the SymPy derivations and the errata checks and print a table.")
    p.add_argument("--only", metavar="EQ", help="run only the checks of one equation, e.g. 47.1257")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown to FILE")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="worker processes running the checks (default: one per core, at most 4)")
    p.set_defaults(func=_cmd_verify)

    train_cli.add_parsers(sub)

    from .derive import DESCRIPTION as derive_description, add_arguments, epilog, run

    p = sub.add_parser("derive", help="write a network's backpropagation in the book's notation, with its proof",
                       description=derive_description, epilog=epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)
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
        try:
            sys.stdout = None
            sys.stderr.close()
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        print(f"partitionnet {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError) as exc:
        print(f"partitionnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"partitionnet {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"partitionnet {args.command}: error: not enough memory for this request", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
