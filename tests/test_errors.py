"""The one exception tree: every error percalign raises on purpose is a PercalignError."""

import inspect

import pytest

from percalign import errors
from percalign.errors import MissingExtraError, PercalignError, missing_extra


def test_every_error_class_is_a_percalign_error_and_a_builtin():
    classes = [c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, Exception)]
    assert len(classes) > 10
    for c in classes:
        assert issubclass(c, PercalignError), c
        if c is not PercalignError:
            builtins = [b for b in c.__mro__ if b.__module__ == "builtins" and b is not object]
            assert builtins[0] is not Exception, f"{c.__name__} names no fitting builtin"


def test_survey_errors_are_percalign_errors():
    from percalign.store.sessions import SurveyError

    error = SurveyError(409, "This trial has been answered.")
    assert isinstance(error, PercalignError) and error.status == 409
    with pytest.raises(PercalignError, match="answered"):
        raise error


def test_a_missing_extra_is_an_import_error_that_names_the_install():
    error = missing_extra("The dreamsim judge", "dreamsim")
    assert isinstance(error, ImportError) and isinstance(error, MissingExtraError)
    assert error.extra == "dreamsim"
    assert str(error).endswith("install it: pip install 'percalign[dreamsim]'")
    assert "'torch-x'" in str(missing_extra("Something", "gpu", package="torch-x"))
