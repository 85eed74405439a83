"""Password and email rules, and argon2id hashing."""

from __future__ import annotations

from argon2 import PasswordHasher, Type

from auth_svc.emails import email_problem, normalise_email
from auth_svc.passwords import PasswordHashing, password_problem

GOOD = "correct horse battery staple"


def test_good_password_passes() -> None:
    assert password_problem(GOOD, "a@example.com") is None


def test_short_password_is_refused_with_the_minimum() -> None:
    assert password_problem("Xy7$kq2!", "a@example.com") == (
        "password must be at least 10 characters"
    )


def test_common_password_is_refused() -> None:
    problem = password_problem("qwertyuiop", "a@example.com")
    assert problem is not None and "too common" in problem


def test_common_password_is_refused_whatever_its_case() -> None:
    problem = password_problem("PassWord123", "a@example.com")
    assert problem is not None and "too common" in problem


def test_password_equal_to_email_is_refused() -> None:
    problem = password_problem("longname@example.com", "longname@example.com")
    assert problem == "password must not be your email address"


def test_repetitive_password_is_refused() -> None:
    assert password_problem("zzzzzzzzzzzzzz", "a@example.com") == "password is too repetitive"


def test_overlong_password_is_refused() -> None:
    problem = password_problem("x1" * 600, "a@example.com")
    assert problem is not None and "at most" in problem


def test_hash_is_argon2id_and_not_the_password() -> None:
    hashed = PasswordHashing().hash(GOOD)
    assert hashed.startswith("$argon2id$")
    assert GOOD not in hashed


def test_check_accepts_right_and_rejects_wrong_password() -> None:
    hashing = PasswordHashing()
    hashed = hashing.hash(GOOD)
    assert hashing.check(hashed, GOOD).ok
    assert not hashing.check(hashed, GOOD + "!").ok


def test_check_without_a_stored_hash_fails() -> None:
    assert not PasswordHashing().check(None, GOOD).ok


def test_old_parameters_get_a_new_hash_on_successful_check() -> None:
    weak = PasswordHasher(type=Type.ID, time_cost=1, memory_cost=8192, parallelism=1)
    old_hash = weak.hash(GOOD)
    result = PasswordHashing().check(old_hash, GOOD)
    assert result.ok and result.new_hash is not None
    assert PasswordHasher().check_needs_rehash(result.new_hash) is False


def test_current_parameters_need_no_rehash() -> None:
    hashing = PasswordHashing()
    assert hashing.check(hashing.hash(GOOD), GOOD).new_hash is None


def test_email_is_normalised() -> None:
    assert normalise_email("  Alice@Example.COM ") == "alice@example.com"


def test_invalid_emails_are_refused() -> None:
    for bad in ("", "plain", "a@b", "a b@example.com", "a@-example.com", "x" * 250 + "@e.com"):
        assert email_problem(bad) is not None, bad


def test_valid_emails_pass() -> None:
    for good in ("a@example.com", "first.last+tag@mail.example.org"):
        assert email_problem(good) is None, good
