"""Result files written all or none (optimizer.domain.output.write_files)."""

from __future__ import annotations

import pytest

from cvxrebalance.optimizer.domain.output import write_files


def test_a_missing_folder_is_named_with_the_file_asked_for(tmp_path):
    with pytest.raises(OSError) as err:
        write_files(tmp_path / "no", {"a.csv": "x\n"})
    assert str(tmp_path / "no" / "a.csv") in str(err.value) and ".tmp" not in str(err.value)
