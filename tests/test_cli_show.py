"""`partitionnet show`: operators printed as grids or LaTeX."""
import numpy as np
import pytest

from partitionnet import Partition, Pooling
from partitionnet.cli import main


def grid_rows(text: str, first: int, count: int):
    """Read ``count`` rows of a printed 0/1 grid starting at line ``first`` (skipping block rules)."""
    rows = [line for line in text.splitlines()[first:] if line and not line.startswith("-")][:count]
    return np.array([[0 if c == "." else int(c) for c in line.split()] for line in rows])


def test_default_shows_the_book_example(capsys):
    assert main(["show"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    start = lines.index(next(l for l in lines if l.startswith("partition matrix V (47.1149)"))) + 1
    V = Partition.from_indices([[1, 4, 6], [2, 5, 4], [3, 6, 1], [2, 4, 1]], 6, one_based=True)
    np.testing.assert_array_equal(grid_rows(out, start, 12), V.matrix().toarray())
    start = lines.index(next(l for l in lines if l.startswith("membership"))) + 1
    np.testing.assert_array_equal(grid_rows(out, start, 4), V.membership().toarray())
    assert "shape 12 x 6, nnz 12" in out


def test_sliding_window_grid_and_latex(capsys):
    assert main(["show", "--shape", "3", "--kernel", "2"]) == 0
    out = capsys.readouterr().out
    assert "shape 4 x 3, nnz 4" in out
    assert main(["show", "--shape", "6x6", "--kernel", "3", "--padding", "same", "--latex"]) == 0
    out = capsys.readouterr().out
    assert "shape 324 x 36, nnz 256" in out
    body = out[out.index("\\begin{bmatrix}"):out.index("\\end{bmatrix}")]
    assert body.count("\\\\") == 323 and body.count("1") == 256


def test_pooling_permutation(capsys):
    assert main(["show", "--shape", "4,4", "--pool", "2"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    start = lines.index(next(l for l in lines if l.startswith("permutation T"))) + 1
    np.testing.assert_array_equal(grid_rows(out, start, 16), Pooling.windows((4, 4), 2).permutation().toarray())


@pytest.mark.parametrize("argv, message", [
    (["show", "--shape", "5,5", "--pool", "2"], "does not tile"),
    (["show", "--shape", "5,5"], "needs --kernel"),
    (["show", "--shape", "5,5", "--kernel", "6"], "larger than the padded input"),
])
def test_errors_exit_2_with_a_message(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_argparse_rejects_malformed_numbers(capsys):
    with pytest.raises(SystemExit):
        main(["show", "--shape", "5,a", "--kernel", "2"])
    assert "expected an int" in capsys.readouterr().err
