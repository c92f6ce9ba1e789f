"""The study database: migrations keep data, a missing driver is named with its install."""

import pytest
from sqlalchemy import inspect, text

from percalign.errors import ConfigError
from percalign.store.db import connect, migrate


def test_migrating_an_older_study_adds_the_comments_table_and_keeps_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0001")
    engine = connect(url)
    with engine.begin() as c:
        c.execute(text("insert into meta (key, value) values ('closed', 'false')"))
    assert "comments" not in inspect(engine).get_table_names()
    migrate(url)
    assert "comments" in inspect(engine).get_table_names()
    with engine.connect() as c:
        assert c.execute(text("select value from meta where key='closed'")).scalar() == "false"
        mode = c.execute(text("pragma journal_mode")).scalar()
        sync = c.execute(text("pragma synchronous")).scalar()
    assert (mode, sync) == ("wal", 2)  # WAL, synchronous=FULL: an acknowledged answer is on disk
    engine.dispose()


def test_a_missing_database_driver_is_named_with_its_install():
    with pytest.raises(ConfigError, match=r"needs the driver 'pg8000'.*percalign\[postgres\]"):
        connect("postgresql+pg8000://someone@127.0.0.1/nothing")
